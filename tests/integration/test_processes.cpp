// What reaches a launched process, and what happens to it and its children.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <csignal>

#include "fixture.hpp"
#include "launch_script.hpp"
#include "wire/utf8.hpp"

using namespace test;

namespace {

std::filesystem::path fresh_directory(const std::string& name) {
  const auto directory = std::filesystem::temp_directory_path() / unique_marker(name);
  std::filesystem::create_directories(directory);
  return directory;
}

}  // namespace

TEST_CASE("hostile arguments and env values arrive byte for byte: nothing is injected") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto directory = fresh_directory("drunc hostile");
  const auto canary = directory / "x";
  std::filesystem::create_directories(canary);

  const std::vector<std::string> hostile = {"a b \"c\" $(id) ; rm -rf x",
                                            "'",
                                            "\\",
                                            "$HOME",
                                            "`touch pwned`",
                                            "*",
                                            "",
                                            "&& touch pwned",
                                            "| tee pwned",
                                            "ünïcødé"};
  std::vector<std::string> args = {"[%s]\\n"};
  args.insert(args.end(), hostile.begin(), hostile.end());
  auto request = boot_request("hostile", "printf", args);
  auto* description = request.mutable_process_description();
  auto* env_printer = description->add_executable_and_arguments();
  env_printer->set_exec("bash");
  env_printer->add_args("-c");
  env_printer->add_args("printf 'env[%s]\\n' \"$EVIL\"");
  (*description->mutable_env())["EVIL"] = "$(touch pwned); `touch pwned` 'q' \"d\"";
  description->set_process_execution_directory(directory.string());

  const auto uuid = boot(client, request);
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
  std::vector<std::string> expected;
  for (const auto& text : hostile) expected.push_back("[" + text + "]");
  expected.push_back("env[$(touch pwned); `touch pwned` 'q' \"d\"]");
  CHECK(log_lines(client, uuid) == expected);
  CHECK(std::filesystem::exists(canary));                     // rm -rf x did not run
  CHECK_FALSE(std::filesystem::exists(directory / "pwned"));  // nothing was executed
  std::filesystem::remove_all(directory);
}

TEST_CASE("execution directory and log path may contain spaces: the log survives restarts") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto directory = fresh_directory("drunc dir with spaces");
  const auto log = directory / "my app.log";
  auto request = boot_request("app", "bash", {"-c", "pwd; echo crash report; exit 4"});
  request.mutable_process_description()->set_process_execution_directory(directory.string());
  request.mutable_process_description()->set_process_logs_path(log.string());
  const auto uuid = boot(client, request);
  events.wait_for_state(uuid, "exited");
  client.restart(query_uuid(uuid));
  events.wait_for_state(uuid, "exited");

  const auto content = read_file(log);
  const auto first_header = content.find("=== drunc-zmq: app uuid " + uuid + " generation 1 on localhost");
  const auto second_header = content.find("=== drunc-zmq: app uuid " + uuid + " generation 2 on localhost");
  REQUIRE(first_header != std::string::npos);
  REQUIRE(second_header != std::string::npos);
  const auto first_run = content.substr(first_header, second_header - first_header);
  CHECK_THAT(first_run, Catch::Contains(directory.string() + "\ncrash report\n"));  // kept, not truncated
  CHECK_THAT(content.substr(second_header), Catch::Contains("crash report"));
  std::filesystem::remove_all(directory);
}

TEST_CASE("kill reaches the whole process group: children and grandchildren die too") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-family");
  // The parent and its background children all carry the marker in argv, and
  // each says when it is up.
  const std::string script = "bash -c 'echo child-up; sleep 300; true' " + marker +
                             "-child & "
                             "bash -c 'bash -c \"echo grandchild-up; sleep 300; true\" " +
                             marker + "-grandchild; true' " + marker + "-child & wait";
  const auto uuid = boot(client, boot_request("family", "bash", {"-c", script, marker + "-parent"}));
  events.wait_for_lines(uuid, {"child-up", "grandchild-up"});
  const auto family = processes_with_marker(marker);
  // The launch shell, the parent, two children, one grandchild (and, for an
  // instant, a shell's fork that has not yet become `sleep`).
  REQUIRE(family.size() >= 5);

  const auto killed = client.kill(query_uuid(uuid));
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  // Members that ignore SIGQUIT (bash does) get the group's SIGKILL after the kill timeout.
  CHECK(wait_until_gone(family));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("kill: SIGQUIT ends a process with 131: one that ignores it gets SIGKILL after the timeout, 137") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(300); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  // Each must be running (its trap set) before the kill: boot it, wait for its "ready".
  auto boot_ready = [&](const pm::BootRequest& request) {
    const auto uuid = boot(client, request);
    events.wait_for_line(uuid, "ready");
    return uuid;
  };
  const auto polite = boot_ready(boot_request("polite", "sh", {"-c", "echo ready; sleep 300"}));
  const auto stubborn =
      boot_ready(boot_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; while true; do sleep 0.05; done"}));
  const auto graceful = boot_ready(boot_request(
      "graceful", "bash",
      {"-c", "trap 'echo shutting down cleanly; exit 0' QUIT; echo ready; while true; do sleep 0.05; done"}));
  pm::ProcessQuery all_three = query_uuid(polite);
  all_three.add_uuids()->set_uuid(stubborn);
  all_three.add_uuids()->set_uuid(graceful);
  const auto killed = client.kill(all_three);
  REQUIRE(killed.values_size() == 3);
  std::map<std::string, int> codes;
  for (const auto& instance : killed.values()) {
    CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
    codes[instance.uuid().uuid()] = instance.return_code();
  }
  CHECK(codes[polite] == 131);
  CHECK(codes[stubborn] == 137);
  CHECK(codes[graceful] == 0);
  // Its last words, written after SIGQUIT, are kept.
  CHECK(log_lines(client, graceful).back() == "shutting down cleanly");
}

TEST_CASE("many processes are killed together and all answered DEAD") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(200); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  for (int i = 0; i < 30; ++i) {
    // Killed before its trap is set, a shell's child could still die of SIGQUIT: wait for "ready".
    const auto uuid = boot(client, boot_request("worker-" + std::to_string(i), "bash",
                                                {"-c", "trap '' QUIT; echo ready; sleep 300; true"}));
    events.wait_for_line(uuid, "ready");
  }
  const auto killed = client.kill(query_name("^worker-"));
  REQUIRE(killed.values_size() == 30);
  for (const auto& instance : killed.values()) {
    CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
    CHECK(instance.return_code() == 137);
  }
}

TEST_CASE("binary output becomes valid UTF-8 log lines") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("binary", "bash", {"-c", "printf 'ok\\n\\xff\\xfe\\x80 raw\\nend'"}));
  events.wait_for_state(uuid, "exited");
  const auto lines = log_lines(client, uuid);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "ok");
  CHECK(lines[1] == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD raw");
  CHECK(lines[2] == "end");  // the partial last line is flushed at exit
  for (const auto& line : lines) CHECK(drunc::wire::is_valid_utf8(line));
}

TEST_CASE("kill stops a process of several commands at once: the next command never runs") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(5000); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  // The first command ends on SIGQUIT with status 3 (a plain shell would ignore it).
  auto request =
      boot_request("steps", "bash", {"-c", "trap 'exit 3' QUIT; echo first; while true; do sleep 0.05; done"});
  auto* second = request.mutable_process_description()->add_executable_and_arguments();
  second->set_exec("echo");
  second->add_args("second command ran");
  auto* third = request.mutable_process_description()->add_executable_and_arguments();
  third->set_exec("sleep");
  third->add_args("300");
  const auto uuid = boot(client, request);
  events.wait_for_line(uuid, "first");
  const auto killed = client.kill(query_uuid(uuid));
  CHECK(killed.values(0).return_code() == 3);  // SIGQUIT was enough: no SIGKILL after 5 s
  for (const auto& line : log_lines(client, uuid)) CHECK(line != "second command ran");
}

TEST_CASE("what a process leaves behind in its group is killed when it exits") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto go = std::filesystem::temp_directory_path() / unique_marker("drunc-leftover");
  // A background child says its pid and lets go of the output; then the leader
  // waits for the test's signal (a file) and exits, leaving the child behind.
  const std::string script = "bash -c 'echo left-behind $$; exec >/dev/null 2>&1; sleep 300; true' & while [ ! -e " +
                             drunc::workers::shell_quote(go.string()) + " ]; do sleep 0.05; done";
  const auto uuid = boot(client, boot_request("leader", "bash", {"-c", script}));
  int left_behind = 0;
  events.wait_for([&](const drunc::client::Event& event) {
    pm::LogLine line;
    return event.topic.rfind("log/", 0) == 0 && line.ParseFromString(event.payload) && line.uuid().uuid() == uuid &&
           std::sscanf(line.line().c_str(), "left-behind %d", &left_behind) == 1;
  });
  { std::ofstream(go.string()) << "go"; }
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
  CHECK(wait_until_gone({left_behind}));
  std::filesystem::remove(go);
}

TEST_CASE("a process ended by a real-time signal is reported with 128+N, and the broker goes on") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("rt", "bash", {"-c", "kill -s RTMIN+1 $$"}));
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 128 + SIGRTMIN + 1);
  CHECK(client.ps(query_uuid(uuid)).values_size() == 1);
}

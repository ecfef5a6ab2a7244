// The SSH transport against a real OpenSSH server: the private sshd of
// tests/fixtures/sshd.sh (CTest fixture "sshd"), on 127.0.0.2 to 127.0.0.5
// port 2222, user drunc-test. Remote processes run on this same machine, so
// the tests see them in /proc (found by a marker in their command line) and
// wait for their end on pidfds. Everything a test starts is stopped by it, or
// by the TestBroker's destruction.
#include <catch2/catch.hpp>

#include <netdb.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "launch_script.hpp"  // shell_quote
#include "ssh_fixture.hpp"

using namespace test;
using namespace test::ssh;
using Catch::Contains;
using drunc::wire::Command;
using drunc::workers::HostKeyPolicy;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

const std::string& hostname_of(const pm::ProcessInstance& instance) {
  return instance.process_description().metadata().hostname();
}

// The sshd processes serving the connections that run these processes.
std::vector<int> sshd_serving(const std::vector<int>& pids) {
  std::set<int> sshd;
  for (int pid : pids)
    for (int serving : sshd_chain_of(pid)) sshd.insert(serving);
  return {sshd.begin(), sshd.end()};
}

std::string quoted(const std::string& text) { return drunc::workers::shell_quote(text); }

// The entries of a known_hosts-format file for [host]:port (hashed or not).
std::string known_hosts_entries(const std::string& file, const std::string& host) {
  int status = 0;
  const auto output = run("ssh-keygen -F " + quoted("[" + host + "]:" + std::to_string(kPort)) + " -f " + quoted(file),
                          /*allow_failure=*/true, &status);
  return status == 0 ? output : "";
}

// configure(), checking host keys against one known_hosts file with this policy.
std::function<void(drunc::broker::Config&)> checking_keys(const TempDir& scratch, const std::string& known,
                                                          HostKeyPolicy policy) {
  return [&scratch, known, policy](drunc::broker::Config& config) {
    configure(config, scratch);
    ssh_settings(config).known_hosts_files = {known};
    ssh_settings(config).host_key_policy = policy;
  };
}

// The reason a boot that must fail gives.
std::string refusal(drunc::client::Client& client, const pm::BootRequest& request) {
  const auto response = boot_response(client, request);
  CHECK(response.flag() == pm::DRUNC_EXCEPTION_THROWN);
  return error_text(response);
}

}  // namespace

TEST_CASE(
    "boot on each of the four hosts: hostname is the host used, the login user is metadata.user, the log file is on "
    "that host") {
  TempDir scratch("drunc-ssh-hosts", std::filesystem::perms::all | std::filesystem::perms::sticky_bit);
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).default_user = "no-such-user";  // metadata.user (drunc-test) is the one used
  });
  auto client = broker.client();
  Events events(broker, {"state/"});
  std::map<std::string, std::string> host_of;  // uuid -> host
  for (const auto& host : kHosts) {
    auto request = remote_request("on-" + host, "bash", {"-c", "id -un; echo \"on $0\"", host}, {host});
    request.mutable_process_description()->set_process_logs_path(scratch / (host + ".log"));
    const auto list = client.boot(request);
    REQUIRE(list.values_size() == 1);
    CHECK(hostname_of(list.values(0)) == host);
    host_of[list.values(0).uuid().uuid()] = host;
  }
  std::set<std::string> uuids;
  for (const auto& [uuid, host] : host_of) uuids.insert(uuid);
  const auto exited = wait_for_states(events, uuids, "exited");
  for (const auto& [uuid, host] : host_of) {
    INFO("host " << host);
    CHECK(exited.at(uuid).status_code() == pm::ProcessInstance::DEAD);
    CHECK(exited.at(uuid).return_code() == 0);
    CHECK(hostname_of(exited.at(uuid)) == host);
    CHECK(log_lines(client, uuid) == std::vector<std::string>{kUser, "on " + host});
    const auto log = read_file(scratch / (host + ".log"));
    CHECK_THAT(log, Contains("=== drunc-zmq: on-" + host + " uuid " + uuid + " generation 1 on " + host));
    CHECK_THAT(log, Contains("\n" + std::string(kUser) + "\non " + host + "\n"));
  }
}

TEST_CASE("port and user per host from the config, and host:port in allowed_hosts") {
  TempDir scratch("drunc-ssh-hostconfig");
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).default_port = 2299;  // nothing listens there
    ssh_settings(config).default_user = "no-such-user";
    ssh_settings(config).hosts["127.0.0.4"] = {kPort, kUser};
  });
  auto client = broker.client();
  Events events(broker, {"state/"});

  // docs/CONFIG.md: the host's user comes before metadata.user and ssh.user.
  auto by_host_config = remote_request("by-host-config", "id", {"-un"}, {"127.0.0.4"});
  by_host_config.mutable_process_description()->mutable_metadata()->set_user("no-such-user");
  const auto first = client.boot(by_host_config);
  REQUIRE(first.values_size() == 1);
  CHECK(hostname_of(first.values(0)) == "127.0.0.4");

  const auto by_port = client.boot(remote_request("by-host-port", "id", {"-un"}, {"127.0.0.5:2222"}));
  REQUIRE(by_port.values_size() == 1);
  CHECK(hostname_of(by_port.values(0)) == "127.0.0.5:2222");  // as written in allowed_hosts

  const auto exited =
      wait_for_states(events, {first.values(0).uuid().uuid(), by_port.values(0).uuid().uuid()}, "exited");
  for (const auto& [uuid, instance] : exited) {
    CHECK(instance.return_code() == 0);
    CHECK(log_lines(client, uuid) == std::vector<std::string>{kUser});
  }
}

TEST_CASE("boot falls back past a refused address, a silent one (connect timeout) and a failed login") {
  TempDir scratch("drunc-ssh-fallback");
  SilentListener silent;
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).connect_timeout = std::chrono::milliseconds(1000);
    ssh_settings(config).hosts["127.0.0.4"] = {0, "root"};  // sshd allows only drunc-test: authentication fails
  });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-fallback");
  auto request = marked_sleep("fallback", marker, {kNothingListens, silent.host_port(), "127.0.0.4", "127.0.0.3"});
  request.mutable_process_description()->mutable_metadata()->clear_user();  // ssh.default_user, or the host's user

  const auto started = std::chrono::steady_clock::now();
  const auto list = client.boot(request);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(list.values_size() == 1);
  CHECK(hostname_of(list.values(0)) == "127.0.0.3");
  CHECK(list.values(0).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(took < std::chrono::seconds(10));  // the silent host cost about the 1 s connect timeout, not more

  const auto uuid = list.values(0).uuid().uuid();
  events.wait_for_line(uuid, "ready");
  const auto pids = processes_with_marker(marker);
  REQUIRE_FALSE(pids.empty());
  const auto killed = client.kill(query_uuid(uuid));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(killed.values(0).return_code() == 131);
  CHECK(wait_until_gone(pids));
}

TEST_CASE("when every host fails, the answer is an error with one reason per host, and nothing is registered") {
  TempDir scratch("drunc-ssh-allfail");
  SilentListener silent;
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).connect_timeout = std::chrono::milliseconds(1000);
  });
  auto client = broker.client();
  const auto marker = unique_marker("drunc-ssh-allfail");
  auto request = marked_sleep("nowhere", marker, {kNothingListens, silent.host_port(), "127.0.0.4"});
  request.mutable_process_description()->mutable_metadata()->set_user("no-such-user");  // login fails on 127.0.0.4
  const auto response = boot_response(client, request);
  CHECK(response.flag() == pm::DRUNC_EXCEPTION_THROWN);
  const auto text = error_text(response);
  INFO(text);
  CHECK_THAT(text, Contains("127.0.0.9"));
  CHECK_THAT(text, Contains(silent.host_port()));
  CHECK_THAT(text, Contains("127.0.0.4"));
  CHECK(client.ps().values_size() == 0);
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("processes on one host share one connection") {
  TempDir scratch("drunc-ssh-reuse");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-reuse");
  std::set<std::string> uuids;
  for (int i = 0; i < 5; ++i)
    uuids.insert(boot(client, marked_sleep("shared-" + std::to_string(i), marker + "/" + std::to_string(i) + "/",
                                           {"127.0.0.3"}, "ssh-reuse")));
  wait_for_line_from_each(events, uuids, "ready");
  const auto pids = processes_with_marker(marker);
  std::set<int> used;
  for (int pid : pids) used.insert(connection_of(pid));
  CHECK(used.size() == 1);
  CHECK(used.count(0) == 0);  // every process descends from the sshd
  const auto killed = client.kill(query_session("ssh-reuse"));
  CHECK(killed.values_size() == 5);
  CHECK(wait_until_gone(pids));
}

TEST_CASE("more processes on one host than MaxSessions: 25 boots at once, all RUNNING, then all killed DEAD") {
  TempDir scratch("drunc-ssh-many");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-many");
  constexpr int kCount = 25;  // OpenSSH's MaxSessions is 10 channels per connection
  std::vector<std::string> requests;
  for (int i = 0; i < kCount; ++i) {
    const auto request =
        marked_sleep("many-" + std::to_string(i), marker + "/" + std::to_string(i) + "/", {"127.0.0.2"}, "ssh-many");
    requests.push_back(client.send(Command::boot, &request));
  }
  std::set<std::string> uuids;
  for (const auto& id : requests) {
    const auto reply = client.wait(id, kPatience);
    INFO(error_text(reply.response));
    REQUIRE(reply.response.flag() == pm::EXECUTED_SUCCESSFULLY);
    pm::ProcessInstanceList list;
    REQUIRE(reply.response.data().UnpackTo(&list));
    REQUIRE(list.values_size() == 1);
    CHECK(list.values(0).status_code() == pm::ProcessInstance::RUNNING);
    CHECK(hostname_of(list.values(0)) == "127.0.0.2");
    uuids.insert(list.values(0).uuid().uuid());
  }
  REQUIRE(uuids.size() == kCount);
  wait_for_line_from_each(events, uuids, "ready");

  const auto listed = client.ps(query_session("ssh-many"));
  CHECK(listed.values_size() == kCount);
  for (const auto& instance : listed.values()) CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  std::vector<int> pids;
  std::set<int> used;
  for (int i = 0; i < kCount; ++i) {
    const auto found = processes_with_marker(marker + "/" + std::to_string(i) + "/");
    INFO("process " << i);
    CHECK_FALSE(found.empty());
    for (int pid : found) {
      pids.push_back(pid);
      used.insert(connection_of(pid));
    }
  }
  used.erase(0);
  CAPTURE(used.size());
  CHECK(used.size() >= 3);  // 10 channels per connection at most
  CHECK(used.size() <= 5);  // connections are reused, not one per process

  const auto killed = client.kill(query_session("ssh-many"));
  REQUIRE(killed.values_size() == kCount);
  for (const auto& instance : killed.values()) {
    CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
    CHECK(instance.return_code() == 131);
  }
  CHECK(wait_until_gone(pids));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("kill of a remote process reaches its whole process group: children and grandchildren die too") {
  TempDir scratch("drunc-ssh-family");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-family");
  const std::string script = "bash -c 'echo child-up; sleep 300; true' " + marker +
                             "-child & "
                             "bash -c 'bash -c \"echo grandchild-up; sleep 300; true\" " +
                             marker + "-grandchild; true' " + marker + "-child & wait";
  const auto uuid = boot(client, remote_request("family", "bash", {"-c", script, marker + "-parent"}, {"127.0.0.3"}));
  events.wait_for_lines(uuid, {"child-up", "grandchild-up"});
  const auto family = processes_with_marker(marker);
  REQUIRE(family.size() >= 4);  // the parent, two children, one grandchild (and the launch shells)

  const auto killed = client.kill(query_uuid(uuid));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(wait_until_gone(family));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("exit codes of remote processes: their own status, 128+N for a signal, 131 and 137 when killed") {
  TempDir scratch("drunc-ssh-codes");
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    config.kill_timeout = std::chrono::milliseconds(300);
  });
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto hosts = std::vector<std::string>{"127.0.0.2"};

  const auto three = boot(client, remote_request("three", "bash", {"-c", "echo bye; exit 3"}, hosts));
  CHECK(events.wait_for_state(three, "exited").return_code() == 3);
  const auto signalled = boot(client, remote_request("signalled", "bash", {"-c", "kill -s USR1 $$"}, hosts));
  CHECK(events.wait_for_state(signalled, "exited").return_code() == 128 + SIGUSR1);

  const auto marker = unique_marker("drunc-ssh-codes");
  const auto polite = boot(client, marked_sleep("polite", marker, hosts));
  const auto stubborn = boot(
      client,
      remote_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; while true; do sleep 0.05; done"}, hosts));
  const auto graceful = boot(
      client, remote_request(
                  "graceful", "bash",
                  {"-c", "trap 'echo shutting down cleanly; exit 0' QUIT; echo ready; while true; do sleep 0.05; done"},
                  hosts));
  wait_for_line_from_each(events, {polite, stubborn, graceful}, "ready");
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
  const auto last_words = log_lines(client, graceful);
  REQUIRE_FALSE(last_words.empty());
  CHECK(last_words.back() == "shutting down cleanly");
}

TEST_CASE("restart of a remote process keeps its uuid, is generation 2, and ends the old process and its children") {
  TempDir scratch("drunc-ssh-restart");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto marker = unique_marker("drunc-ssh-restart");
  const std::string script = "bash -c 'echo child-up; sleep 300; true' " + marker + "-child & echo parent-up; wait";
  const auto uuid = boot(client, remote_request("phoenix", "bash", {"-c", script, marker + "-parent"}, {"127.0.0.5"}));
  events.wait_for_lines(uuid, {"child-up", "parent-up"});
  const auto first = processes_with_marker(marker);
  REQUIRE(first.size() >= 2);

  const auto restarted = client.restart(query_uuid(uuid));
  REQUIRE(restarted.values_size() == 1);
  CHECK(restarted.values(0).uuid().uuid() == uuid);
  CHECK(restarted.values(0).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(hostname_of(restarted.values(0)) == "127.0.0.5");
  CHECK(wait_until_gone(first));  // the first incarnation, children included

  // The "restarted" event and the new incarnation's lines, in whatever order they come.
  bool restarted_seen = false;
  std::uint32_t generation = 0;
  std::set<std::string> lines = {"child-up", "parent-up"};
  while (!restarted_seen || !lines.empty()) {
    events.wait_for([&](const drunc::client::Event& event) {
      if (event.topic.rfind("state/", 0) == 0 && event.meta.transition() == "restarted") {
        pm::ProcessInstance instance;
        if (!instance.ParseFromString(event.payload) || instance.uuid().uuid() != uuid) return false;
        restarted_seen = true;
        generation = event.meta.generation();
        return true;
      }
      pm::LogLine line;
      return event.topic.rfind("log/", 0) == 0 && event.meta.generation() == 2 && line.ParseFromString(event.payload) &&
             line.uuid().uuid() == uuid && lines.erase(line.line()) == 1;
    });
  }
  CHECK(generation == 2);
  const auto second = processes_with_marker(marker);
  REQUIRE(second.size() >= 2);
  for (int pid : second) CHECK(std::find(first.begin(), first.end(), pid) == first.end());

  const auto all_lines = log_lines(client, uuid);
  CHECK(std::count(all_lines.begin(), all_lines.end(), "parent-up") == 2);  // logs spans both incarnations

  const auto killed = client.kill(query_uuid(uuid));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(wait_until_gone(second));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("live log lines of a remote process on the PUB, stdout and stderr, and logs serves them") {
  TempDir scratch("drunc-ssh-live");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto go = scratch / "go";
  const std::string script =
      "echo first; echo to-stderr >&2; while [ ! -e \"$0\" ]; do sleep 0.05; done; echo second; exit 7";
  const auto uuid = boot(client, remote_request("live", "bash", {"-c", script, go}, {"127.0.0.4"}));
  // Seen while the process still waits for the go file: streamed live.
  events.wait_for_lines(uuid, {"first", "to-stderr"});
  CHECK(log_lines(client, uuid) == std::vector<std::string>{"first", "to-stderr"});
  CHECK(client.ps(query_uuid(uuid)).values(0).status_code() == pm::ProcessInstance::RUNNING);
  { std::ofstream(go) << "go"; }
  events.wait_for_line(uuid, "second");
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 7);
  CHECK(log_lines(client, uuid) == std::vector<std::string>{"first", "to-stderr", "second"});
  CHECK(log_lines(client, uuid, 1) == std::vector<std::string>{"second"});
}

TEST_CASE("a dropped connection: the process is reported DEAD, ends on the remote host, and the host is used again") {
  TempDir scratch("drunc-ssh-drop");
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).keepalive_interval = std::chrono::milliseconds(1000);
  });
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto marker = unique_marker("drunc-ssh-drop");
  const auto uuid = boot(client, marked_sleep("dropped", marker, {"127.0.0.5"}));
  events.wait_for_line(uuid, "ready");
  const auto family = processes_with_marker(marker);
  REQUIRE_FALSE(family.empty());
  const auto serving = sshd_serving(family);
  REQUIRE_FALSE(serving.empty());
  kill_hard(serving);  // the connection drops: sshd's monitor and its network child die

  std::string transition;
  events.wait_for([&](const drunc::client::Event& event) {
    pm::ProcessInstance instance;
    if (event.topic.rfind("state/", 0) != 0 || !instance.ParseFromString(event.payload) ||
        instance.uuid().uuid() != uuid || instance.status_code() != pm::ProcessInstance::DEAD)
      return false;
    transition = event.meta.transition();
    return true;
  });
  CAPTURE(transition);
  CHECK((transition == "lost" || transition == "exited" || transition == "killed"));
  const auto after = client.ps(query_uuid(uuid));
  REQUIRE(after.values_size() == 1);
  CHECK(after.values(0).status_code() == pm::ProcessInstance::DEAD);
  if (transition == "lost") CHECK(after.values(0).return_code() == -1);  // docs/PROTOCOL.md
  CHECK(wait_until_gone(family));                                        // no orphan left on the remote host
  CHECK(processes_with_marker(marker).empty());
  CHECK(wait_until_gone(serving));

  // A new connection serves the host.
  const auto again = boot(client, marked_sleep("again", marker + "-again", {"127.0.0.5"}));
  events.wait_for_line(again, "ready");
  const auto again_pids = processes_with_marker(marker + "-again");
  const auto killed = client.kill(query_uuid(again));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).return_code() == 131);
  CHECK(wait_until_gone(again_pids));
}

TEST_CASE("kill -9 of the broker leaves no remote process") {
  TempDir scratch("drunc-ssh-kill9");
  const nlohmann::json config = {{"name", "ssh-kill9"},
                                 {"control_endpoint", "tcp://127.0.0.1:*"},
                                 {"events_endpoint", "tcp://127.0.0.1:*"},
                                 {"log_level", "info"},
                                 {"ssh",
                                  {{"port", kPort},
                                   {"user", kUser},
                                   {"key_files", nlohmann::json::array({client_key()})},
                                   {"use_agent", false},
                                   {"known_hosts_files", nlohmann::json::array({known_hosts()})},
                                   {"accepted_hosts_file", scratch / "accepted_hosts"},
                                   {"host_key_policy", "strict"},
                                   {"connect_timeout_s", 5}}}};
  BrokerProgram program(config.dump(), scratch);
  ProgramEvents events(program, {"log/"});
  drunc::client::Client client(program.control_endpoint(), kPatience);
  const auto marker = unique_marker("drunc-ssh-kill9");
  const auto one = boot(client, marked_sleep("orphan-1", marker + "/1/", {"127.0.0.2"}));
  const auto two = boot(client, marked_sleep("orphan-2", marker + "/2/", {"127.0.0.3"}));
  events.wait_for_line_from_each({one, two}, "ready");
  const auto remote = processes_with_marker(marker);
  REQUIRE(remote.size() >= 2);
  const auto serving = sshd_serving(remote);
  CHECK_FALSE(serving.empty());

  const auto killed_at = std::chrono::steady_clock::now();
  program.kill_hard();
  CHECK(wait_until_gone(remote));
  const auto took = std::chrono::steady_clock::now() - killed_at;
  CHECK(took < std::chrono::seconds(10));  // "within a few seconds"
  CHECK(processes_with_marker(marker).empty());
  CHECK(wait_until_gone(serving));
}

TEST_CASE("SIGTERM of the broker program kills its remote processes, and it exits 0") {
  TempDir scratch("drunc-ssh-sigterm");
  const nlohmann::json config = {{"name", "ssh-sigterm"},
                                 {"control_endpoint", "tcp://127.0.0.1:*"},
                                 {"events_endpoint", "tcp://127.0.0.1:*"},
                                 {"log_level", "info"},
                                 {"kill_timeout_s", 0.5},
                                 {"ssh",
                                  {{"port", kPort},
                                   {"user", kUser},
                                   {"key_files", nlohmann::json::array({client_key()})},
                                   {"use_agent", false},
                                   {"known_hosts_files", nlohmann::json::array({known_hosts()})},
                                   {"accepted_hosts_file", scratch / "accepted_hosts"},
                                   {"host_key_policy", "strict"}}}};
  BrokerProgram program(config.dump(), scratch);
  ProgramEvents events(program, {"log/"});
  drunc::client::Client client(program.control_endpoint(), kPatience);
  const auto marker = unique_marker("drunc-ssh-sigterm");
  const auto one = boot(client, marked_sleep("stopped-1", marker + "/1/", {"127.0.0.4"}));
  const auto two =
      boot(client, remote_request("stopped-2", "bash",
                                  {"-c", "trap '' QUIT; echo ready; while true; do sleep 0.05; done", marker + "/2/"},
                                  {"127.0.0.5"}));
  events.wait_for_line_from_each({one, two}, "ready");
  const auto remote = processes_with_marker(marker);
  REQUIRE(remote.size() >= 2);
  CHECK(program.stop() == 0);
  CHECK(wait_until_gone(remote));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("a kill sent while a remote boot is still starting, and terminate, leave nothing running") {
  TempDir scratch("drunc-ssh-early-kill");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-early-kill");
  // Boot and kill sent together: the kill finds the process starting.
  const auto early_request = marked_sleep("early", marker + "/early/", {"127.0.0.3"});
  const auto boot_id = client.send(Command::boot, &early_request);
  const auto early_query = query_name("^early$");
  const auto kill_id = client.send(Command::kill, &early_query);
  const auto booted = client.wait(boot_id, kPatience);
  const auto killed = client.wait(kill_id, kPatience);
  INFO(error_text(booted.response) << " / " << error_text(killed.response));
  CHECK(booted.response.flag() == pm::EXECUTED_SUCCESSFULLY);
  REQUIRE(killed.response.flag() == pm::EXECUTED_SUCCESSFULLY);
  pm::ProcessInstanceList killed_list;
  REQUIRE(killed.response.data().UnpackTo(&killed_list));
  for (const auto& instance : killed_list.values()) CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
  const auto listed = client.ps(early_query);
  REQUIRE(listed.values_size() == 1);
  CHECK(listed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(wait_until_gone(processes_with_marker(marker + "/early/")));

  // terminate: every remote process, on every host, DEAD and gone.
  std::set<std::string> uuids;
  for (std::size_t i = 0; i < kHosts.size(); ++i)
    uuids.insert(boot(client, marked_sleep("term-" + std::to_string(i), marker + "/term/", {kHosts[i]})));
  wait_for_line_from_each(events, uuids, "ready");
  const auto remote = processes_with_marker(marker + "/term/");
  REQUIRE(remote.size() >= kHosts.size());
  const auto terminated = client.terminate();
  for (const auto& instance : terminated.values()) CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
  CHECK(wait_until_gone(remote));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("a changed host key is refused under strict, naming host and fingerprint, and the next host is tried") {
  TempDir scratch("drunc-ssh-changed-strict");
  const auto known = write_known_hosts(scratch, "known_hosts", {{"127.0.0.3", other_host_key(scratch)}});
  TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::strict));
  auto client = broker.client();
  const auto marker = unique_marker("drunc-ssh-changed-strict");
  const auto text = refusal(client, marked_sleep("changed", marker, {"127.0.0.3"}));
  INFO(text);
  CHECK_THAT(text, Contains("127.0.0.3"));
  CHECK_THAT(text, Contains(server_fingerprint()));
  CHECK(client.ps().values_size() == 0);
  CHECK(processes_with_marker(marker).empty());

  const auto list = client.boot(marked_sleep("next", marker, {"127.0.0.3", "127.0.0.2"}));
  REQUIRE(list.values_size() == 1);
  CHECK(hostname_of(list.values(0)) == "127.0.0.2");
  client.kill(query_uuid(list.values(0).uuid().uuid()));
}

TEST_CASE(
    "a changed host key is refused under accept-new, from known_hosts or from the accepted file, and not recorded") {
  TempDir scratch("drunc-ssh-changed-acceptnew");
  const auto other = other_host_key(scratch);
  const auto server_key = server_host_key();
  const auto marker = unique_marker("drunc-ssh-changed-acceptnew");

  SECTION("the changed key is in a known_hosts file") {
    const auto known = write_known_hosts(scratch, "known_hosts", {{"127.0.0.3", other}});
    const auto accepted = scratch / "accepted_hosts";
    TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::accept_new));
    auto client = broker.client();
    const auto text = refusal(client, marked_sleep("changed", marker, {"127.0.0.3"}));
    INFO(text);
    CHECK_THAT(text, Contains("127.0.0.3"));
    CHECK_THAT(text, Contains(server_fingerprint()));
    CHECK(client.ps().values_size() == 0);
    CHECK(known_hosts_entries(accepted, "127.0.0.3").find(server_key.substr(server_key.find(' ') + 1)) ==
          std::string::npos);  // the new key was not accepted
  }
  SECTION("the changed key is in the accepted hosts file") {
    const auto known = write_known_hosts(scratch, "known_hosts", {}, {"127.0.0.3"});
    const auto accepted = scratch / "accepted_hosts";
    { std::ofstream(accepted) << "[127.0.0.3]:" << kPort << " " << other << "\n"; }
    const auto before = read_file(accepted);
    TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::accept_new));
    auto client = broker.client();
    const auto text = refusal(client, marked_sleep("changed", marker, {"127.0.0.3"}));
    INFO(text);
    CHECK_THAT(text, Contains("127.0.0.3"));
    CHECK_THAT(text, Contains(server_fingerprint()));
    CHECK(client.ps().values_size() == 0);
    CHECK(read_file(accepted) == before);
  }
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("a known host offering a key of another type is refused under accept-new, not recorded") {
  TempDir scratch("drunc-ssh-other-type");
  // The host is known with an RSA key; the server offers its ed25519 key.
  const auto rsa_path = scratch / unique_marker("rsa_key");
  run("ssh-keygen -q -t rsa -b 2048 -N '' -f " + drunc::workers::shell_quote(rsa_path));
  std::istringstream rsa_line(run("cat " + drunc::workers::shell_quote(rsa_path + ".pub")));
  std::string type, blob;
  rsa_line >> type >> blob;
  const auto known = write_known_hosts(scratch, "known_hosts", {{"127.0.0.3", type + " " + blob}});
  const auto accepted = scratch / "accepted_hosts";
  TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::accept_new));
  auto client = broker.client();
  const auto text = refusal(client, marked_sleep("other-type", unique_marker("drunc-ssh-other-type"), {"127.0.0.3"}));
  CHECK_THAT(text, Contains("CHANGED") && Contains(server_fingerprint()));
  CHECK_FALSE(std::filesystem::exists(accepted));
}

TEST_CASE("accept-new records an unknown host's key in the accepted hosts file, and uses it the next time") {
  TempDir scratch("drunc-ssh-acceptnew");
  const auto accepted = scratch / "accepted_hosts";
  const auto server_key = server_host_key();
  // A missing known_hosts file is an empty one.
  const auto adjust = checking_keys(scratch, scratch / "no_such_known_hosts", HostKeyPolicy::accept_new);
  for (int round = 1; round <= 2; ++round) {
    INFO("broker " << round);
    TestBroker broker(adjust);
    auto client = broker.client();
    Events events(broker, {"state/"});
    const auto uuid = boot(client, remote_request("welcome", "true", {}, {"127.0.0.4"}));
    CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
    const auto entries = known_hosts_entries(accepted, "127.0.0.4");
    CHECK_THAT(entries, Contains(server_key.substr(server_key.find(' ') + 1)));
  }
  // Recorded once: known the second time.
  std::istringstream lines(read_file(accepted));
  int entries = 0;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] != '#') ++entries;
  CHECK(entries == 1);
}

TEST_CASE("strict refuses a host whose key is unknown, and records nothing") {
  TempDir scratch("drunc-ssh-unknown-strict");
  const auto known = write_known_hosts(scratch, "known_hosts", {}, {"127.0.0.5"});
  const auto accepted = scratch / "accepted_hosts";
  TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::strict));
  auto client = broker.client();
  const auto marker = unique_marker("drunc-ssh-unknown-strict");
  const auto text = refusal(client, marked_sleep("stranger", marker, {"127.0.0.5"}));
  INFO(text);
  CHECK_THAT(text, Contains("127.0.0.5"));
  CHECK(client.ps().values_size() == 0);
  CHECK(known_hosts_entries(accepted, "127.0.0.5").empty());

  const auto list = client.boot(marked_sleep("known", marker, {"127.0.0.5", "127.0.0.4"}));
  REQUIRE(list.values_size() == 1);
  CHECK(hostname_of(list.values(0)) == "127.0.0.4");
  client.kill(query_uuid(list.values(0).uuid().uuid()));
}

TEST_CASE("host_key_policy off connects whatever the key") {
  TempDir scratch("drunc-ssh-policy-off");
  const auto known = write_known_hosts(scratch, "known_hosts", {{"127.0.0.3", other_host_key(scratch)}});
  TestBroker broker(checking_keys(scratch, known, HostKeyPolicy::off));
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, remote_request("anyway", "true", {}, {"127.0.0.3"}));
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
}

TEST_CASE("an idle connection closes after idle_close") {
  TempDir scratch("drunc-ssh-idle");
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).idle_close = std::chrono::milliseconds(1000);
  });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-idle");
  const auto uuid = boot(client, marked_sleep("brief", marker, {"127.0.0.4"}));
  events.wait_for_line(uuid, "ready");
  const auto pids = processes_with_marker(marker);
  const auto serving = sshd_serving(pids);
  REQUIRE_FALSE(serving.empty());
  client.kill(query_uuid(uuid));
  CHECK(wait_until_gone(pids));
  CHECK(wait_until_gone(serving));  // closed by the broker about 1 s later, while the broker runs
}

TEST_CASE("allowed_host_types is refused with a clear error") {
  TempDir scratch("drunc-ssh-hosttypes");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  auto request = remote_request("typed", "true", {}, {"127.0.0.2"});
  request.mutable_process_restriction()->add_allowed_host_types("readout");
  const auto response = boot_response(client, request);
  CHECK(response.flag() == pm::DRUNC_EXCEPTION_THROWN);
  CHECK_THAT(error_text(response), Contains("allowed_host_types"));
  CHECK(client.ps().values_size() == 0);
}

TEST_CASE("a host that does not answer delays neither another host's boot nor other requests, on the same worker") {
  TempDir scratch("drunc-ssh-slowhost");
  SilentListener silent;
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).workers = 1;  // both hosts on one worker thread
    ssh_settings(config).connect_timeout = std::chrono::milliseconds(6000);
  });
  auto client = broker.client();
  const auto marker = unique_marker("drunc-ssh-slowhost");
  const auto slow_request = marked_sleep("slow", marker + "-slow", {silent.host_port()});
  const auto slow = client.send(Command::boot, &slow_request);
  const auto started = std::chrono::steady_clock::now();
  const auto fast = client.boot(marked_sleep("fast", marker + "-fast", {"127.0.0.2"}));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));  // not after the 6 s timeout
  REQUIRE(fast.values_size() == 1);
  CHECK(hostname_of(fast.values(0)) == "127.0.0.2");
  const auto listed_at = std::chrono::steady_clock::now();
  client.ps();
  CHECK(std::chrono::steady_clock::now() - listed_at < std::chrono::seconds(5));
  const auto killed = client.kill(query_uuid(fast.values(0).uuid().uuid()));
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  const auto refused = client.wait(slow, kPatience);  // after the 6 s connect timeout
  CHECK(refused.response.flag() == pm::DRUNC_EXCEPTION_THROWN);
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("ssh-agent authenticates when SSH_AUTH_SOCK is set and use_agent is on") {
  TempDir scratch("drunc-ssh-agent");
  Agent agent(scratch);
  struct Environment {
    std::string previous;
    bool had;
    Environment(const std::string& value) {
      const char* old = std::getenv("SSH_AUTH_SOCK");
      had = old != nullptr;
      if (had) previous = old;
      ::setenv("SSH_AUTH_SOCK", value.c_str(), 1);
    }
    ~Environment() {
      if (had)
        ::setenv("SSH_AUTH_SOCK", previous.c_str(), 1);
      else
        ::unsetenv("SSH_AUTH_SOCK");
    }
  } environment(agent.socket());

  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).key_files = {};  // the key is only in the agent
    ssh_settings(config).use_agent = true;
  });
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto response = boot_response(client, remote_request("agent", "id", {"-un"}, {"127.0.0.2"}));
  INFO(error_text(response));
  REQUIRE(response.flag() == pm::EXECUTED_SUCCESSFULLY);
  pm::ProcessInstanceList list;
  REQUIRE(response.data().UnpackTo(&list));
  REQUIRE(list.values_size() == 1);
  const auto uuid = list.values(0).uuid().uuid();
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
  CHECK(log_lines(client, uuid) == std::vector<std::string>{kUser});
}

TEST_CASE(
    "a peer that stops answering is detected by keepalives: the process is reported lost, and ends once the peer "
    "wakes") {
  TempDir scratch("drunc-ssh-silentpeer");
  TestBroker broker([&](auto& config) {
    configure(config, scratch);
    ssh_settings(config).keepalive_interval = std::chrono::milliseconds(1000);
  });
  auto client = broker.client();
  Events events(broker, {"log/", "state/"});
  const auto marker = unique_marker("drunc-ssh-silentpeer");
  const auto uuid = boot(client, marked_sleep("hung-peer", marker, {"127.0.0.4"}));
  events.wait_for_line(uuid, "ready");
  const auto family = processes_with_marker(marker);
  const auto serving = sshd_serving(family);
  REQUIRE_FALSE(serving.empty());
  // The sshd serving the connection freezes: TCP still answers (the kernel
  // does), SSH does not. Woken at the end of the test whatever happens.
  struct Frozen {
    std::vector<int> pids;
    ~Frozen() {
      for (int pid : pids) ::kill(pid, SIGCONT);
    }
  } frozen{serving};
  for (int pid : serving) ::kill(pid, SIGSTOP);

  const auto stopped_at = std::chrono::steady_clock::now();
  std::string transition;
  events.wait_for([&](const drunc::client::Event& event) {
    pm::ProcessInstance instance;
    if (event.topic.rfind("state/", 0) != 0 || !instance.ParseFromString(event.payload) ||
        instance.uuid().uuid() != uuid || instance.status_code() != pm::ProcessInstance::DEAD)
      return false;
    transition = event.meta.transition();
    return true;
  });
  CHECK(transition == "lost");
  CHECK(std::chrono::steady_clock::now() - stopped_at < std::chrono::seconds(15));  // a few keepalive intervals

  // Once awake, the sshd finds its connection closed by the broker, and the remote side kills the process.
  for (int pid : serving) ::kill(pid, SIGCONT);
  CHECK(wait_until_gone(family));
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("a known_hosts line that cannot be read costs only that line, and a key marked @revoked is refused") {
  TempDir scratch("drunc-ssh-known-lines");
  const auto known = scratch / "known_hosts";
  {
    std::ofstream file(known);
    file << "# comment\n\n";
    file << "this line is not a known_hosts entry at all\n";
    file << "@cert-authority *.example.org ssh-ed25519 "
            "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    file << "[127.0.0.2]:" << kPort << " " << server_host_key() << "\n";
    file << "@revoked\t[127.0.0.9]:" << kPort << " " << server_host_key() << "\n";  // the key, whatever the host
    file << "[127.0.0.3]:" << kPort << " " << server_host_key() << "\n";
  }
  SECTION("a host listed after the unreadable lines is known") {
    // Without @revoked: the same file minus that line.
    const auto without = scratch / "known_hosts_without_revoked";
    {
      std::ifstream in(known);
      std::ofstream out(without);
      std::string line;
      while (std::getline(in, line))
        if (line.rfind("@revoked", 0) != 0) out << line << "\n";
    }
    TestBroker broker(checking_keys(scratch, without, HostKeyPolicy::strict));
    auto client = broker.client();
    const auto list = client.boot(marked_sleep("after-garbage", unique_marker("drunc-ssh-known-lines"), {"127.0.0.3"}));
    REQUIRE(list.values_size() == 1);
    CHECK(hostname_of(list.values(0)) == "127.0.0.3");
    client.kill(query_uuid(list.values(0).uuid().uuid()));
  }
  SECTION("the revoked key is refused for a host that lists it, under strict and accept-new") {
    for (auto policy : {HostKeyPolicy::strict, HostKeyPolicy::accept_new}) {
      TestBroker broker(checking_keys(scratch, known, policy));
      auto client = broker.client();
      const auto text = refusal(client, marked_sleep("revoked", unique_marker("drunc-ssh-revoked"), {"127.0.0.2"}));
      INFO(text);
      CHECK_THAT(text, Contains("REVOKED") && Contains(server_fingerprint()) && Contains("127.0.0.2"));
      CHECK(client.ps().values_size() == 0);
    }
  }
}

TEST_CASE("a host name with several addresses: the next address is tried when one refuses") {
  // tests/fixtures/sshd.sh maps drunc-test-dual to ::1 (nothing listens there) and 127.0.0.2.
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  REQUIRE(::getaddrinfo("drunc-test-dual", "2222", &hints, &addresses) == 0);
  std::vector<int> families;
  for (auto* address = addresses; address; address = address->ai_next) families.push_back(address->ai_family);
  ::freeaddrinfo(addresses);
  REQUIRE(families.size() == 2);
  if (families.front() != AF_INET6) {  // glibc puts ::1 last where IPv6 is off: nothing to fall back from
    WARN("drunc-test-dual resolves to IPv4 first here: the fallback is not exercised");
    return;
  }

  TempDir scratch("drunc-ssh-dual");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  const auto list = client.boot(marked_sleep("dual", unique_marker("drunc-ssh-dual"), {"drunc-test-dual"}));
  REQUIRE(list.values_size() == 1);
  CHECK(hostname_of(list.values(0)) == "drunc-test-dual");
  client.kill(query_uuid(list.values(0).uuid().uuid()));
}

TEST_CASE("a host name that does not resolve fails that host only, with the resolver's reason") {
  TempDir scratch("drunc-ssh-noname");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  const auto marker = unique_marker("drunc-ssh-noname");
  const auto text = refusal(client, marked_sleep("noname", marker, {"no-such-host.invalid"}));
  INFO(text);
  CHECK_THAT(text, Contains("no-such-host.invalid") && Contains("cannot resolve"));

  const auto list = client.boot(marked_sleep("next", marker, {"no-such-host.invalid", "127.0.0.2"}));
  REQUIRE(list.values_size() == 1);
  CHECK(hostname_of(list.values(0)) == "127.0.0.2");
  client.kill(query_uuid(list.values(0).uuid().uuid()));
}

TEST_CASE("a user whose login shell is tcsh runs processes like any other, and kills reach them") {
  TempDir scratch("drunc-ssh-tcsh");
  TestBroker broker([&](auto& config) { configure(config, scratch); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-ssh-tcsh");
  auto request = marked_sleep("tcsh-user", marker, {"127.0.0.2"});
  request.mutable_process_description()->mutable_metadata()->set_user("drunc-test-csh");
  // An argument that no shell may touch on the way: quotes, $, !, a newline.
  const std::string tricky = "it's \"$HOME\" !x\nline two";
  auto* commands = request.mutable_process_description()->mutable_executable_and_arguments();
  const auto sleep = commands->Get(0);
  commands->Clear();
  auto* print = commands->Add();
  print->set_exec("printf");
  print->add_args("%s|\n");
  print->add_args(tricky);
  *commands->Add() = sleep;
  const auto list = client.boot(request);
  REQUIRE(list.values_size() == 1);
  const auto uuid = list.values(0).uuid().uuid();
  events.wait_for_lines(uuid, {"it's \"$HOME\" !x", "line two|", "ready"});
  // The marked sleep (argv[0] is the marker); the script's shells carry the marker in their arguments.
  const auto pids = processes_with_marker(marker);
  REQUIRE_FALSE(pids.empty());
  std::vector<int> sleep_pid;
  for (int pid : pids)
    if (read_file("/proc/" + std::to_string(pid) + "/cmdline").rfind(marker + '\0', 0) == 0) sleep_pid.push_back(pid);
  REQUIRE(sleep_pid.size() == 1);
  CHECK(run("ps -o user= -p " + std::to_string(sleep_pid[0])).find("drunc-test-csh") != std::string::npos);
  const auto killed = client.kill(query_uuid(uuid));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).return_code() == 131);
  CHECK(wait_until_gone(pids));
}

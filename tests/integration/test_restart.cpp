// on_broker_exit "keep" (issue 15): processes outlive a broker killed by
// SIGKILL, and a broker started again with the same configuration re-adopts
// them from its journal: the survivors with the same uuids and their output
// read on from where the first broker stopped, those that ended meanwhile
// DEAD with the status they recorded, one whose status was never recorded
// lost. Both brokers run as programs, as in test_lifetime.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "ssh_fixture.hpp"  // BrokerProgram, TempDir: nothing here needs the sshd

using namespace test;

namespace {

// Waits (polling its captured output, deadline kPatience) until the broker program has printed text.
bool wait_for_output(const ssh::BrokerProgram& program, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    if (program.output().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::map<std::string, pm::ProcessInstance> table(drunc::client::Client& client) {
  std::map<std::string, pm::ProcessInstance> out;
  const auto list = client.ps();
  for (const auto& instance : list.values()) out[instance.uuid().uuid()] = instance;
  return out;
}

bool contains(const std::vector<std::string>& lines, const std::string& text) {
  return std::find(lines.begin(), lines.end(), text) != lines.end();
}

}  // namespace

TEST_CASE("keep: a broker killed by SIGKILL and started again re-adopts its processes") {
  ssh::TempDir scratch("drunc-restart");
  const std::filesystem::path journal = scratch / "journal";
  std::filesystem::create_directory(journal);
  const std::string config = R"({"name": "restart", "control_endpoint": "tcp://127.0.0.1:*",
                                 "events_endpoint": "tcp://127.0.0.1:*", "on_broker_exit": "keep",
                                 "journal_directory": ")" +
                             journal.string() + R"("})";
  const auto marker = unique_marker("drunc-restart");
  const std::filesystem::path down = scratch / "down";      // made once the first broker is dead
  const std::filesystem::path resume = scratch / "resume";  // made once the second one has re-adopted
  auto wait_for = [](const std::filesystem::path& file) {
    return "while [ ! -e '" + file.string() + "' ]; do sleep 0.02; done; ";
  };

  // 0-9 survive; 10-17 exit with status 3-10 while no broker runs; 18 has
  // its command killed from outside (SIGKILL: its script records 137); 19 has
  // its whole group killed from outside (nothing recorded: lost).
  std::vector<std::string> uuids;
  std::set<std::string> all;
  {
    ssh::BrokerProgram first(config, scratch);
    ssh::ProgramEvents events(first, {"log/"});
    drunc::client::Client client(first.control_endpoint(), kPatience);
    for (int i = 0; i < 20; ++i) {
      std::string body = "echo ready; " + wait_for(down) + "echo while-down; ";
      if (i < 10)
        body += wait_for(resume) + "echo after-restart; exec -a \"$0\" sleep 300";
      else if (i < 18)
        body += "exit " + std::to_string(i - 7);
      else
        body += "exec -a \"$0\" sleep 300";
      auto request = boot_request("p" + std::to_string(i), "bash", {"-c", body, marker + "/" + std::to_string(i)});
      if (i % 2 == 0)
        request.mutable_process_description()->set_process_logs_path(scratch / ("p" + std::to_string(i) + ".log"));
      uuids.push_back(boot(client, request));
      all.insert(uuids.back());
    }
    events.wait_for_line_from_each(all, "ready");
    first.kill_hard();
  }
  // Nothing died with it.
  for (int i = 0; i < 20; ++i) CHECK_FALSE(processes_with_marker(marker + "/" + std::to_string(i)).empty());

  std::ofstream(down.string()) << "";
  for (int i = 10; i < 18; ++i) REQUIRE(wait_until_gone(processes_with_marker(marker + "/" + std::to_string(i))));
  // 18: its command (sleep, the script's child) killed; 19: the whole group.
  const auto pids_18 = processes_with_marker(marker + "/18");
  for (int pid : pids_18)
    if (read_file("/proc/" + std::to_string(pid) + "/comm") == "sleep\n") ::kill(pid, SIGKILL);
  REQUIRE(wait_until_gone(pids_18));
  const auto pids_19 = processes_with_marker(marker + "/19");
  REQUIRE_FALSE(pids_19.empty());
  ::kill(-static_cast<pid_t>(::getpgid(pids_19.front())), SIGKILL);
  REQUIRE(wait_until_gone(pids_19));

  // A record torn in the middle, as a crash in a write would leave it.
  {
    std::ofstream torn((journal / "journal").string(), std::ios::binary | std::ios::app);
    torn << std::string("\x40\x00\x00\x00\x12\x34", 6);
  }

  ssh::BrokerProgram second(config, scratch);
  if (!wait_for_output(second, "restarted: 10 processes re-adopted, 9 ended while it was down, 1 lost"))
    FAIL("no re-adoption broadcast as expected; the broker said:\n" + second.output());
  CHECK(second.output().find("cut off") != std::string::npos);
  drunc::client::Client client(second.control_endpoint(), kPatience);
  auto processes = table(client);
  REQUIRE(processes.size() == 20);
  for (int i = 0; i < 20; ++i) {
    INFO("process " << i);
    const auto& instance = processes.at(uuids[i]);
    if (i < 10) {
      CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
    } else {
      CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
      CHECK(instance.return_code() == (i < 18 ? i - 7 : i == 18 ? 137 : -1));
    }
    // What it wrote while no broker read is taken back, what the first one read is not read again.
    if (i < 19) {
      const auto lines = log_lines(client, uuids[i]);
      CHECK(contains(lines, "while-down"));
      CHECK_FALSE(contains(lines, "ready"));
    }
  }

  // The survivors' new lines reach the feed.
  ssh::ProgramEvents events(second, {"log/"});
  std::ofstream(resume.string()) << "";
  std::set<std::string> survivors(uuids.begin(), uuids.begin() + 10);
  events.wait_for_line_from_each(survivors, "after-restart");
  CHECK(contains(log_lines(client, uuids[0]), "after-restart"));

  // kill and restart work on re-adopted processes.
  const auto killed = client.kill(query_uuid(uuids[0]));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  const auto restarted = client.restart(query_uuid(uuids[1]));
  REQUIRE(restarted.values_size() == 1);
  CHECK(restarted.values(0).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(restarted.values(0).uuid().uuid() == uuids[1]);

  client.terminate();
  const bool gone = wait_until_gone(processes_with_marker(marker));
  for (int pid : processes_with_marker(marker)) ::kill(pid, SIGKILL);
  CHECK(gone);
}

TEST_CASE("keep: a journal directory that does not exist is refused at start") {
  ssh::TempDir scratch("drunc-restart");
  const std::string config = R"({"control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*",
                                 "on_broker_exit": "keep", "journal_directory": ")" +
                             scratch / "missing" + R"("})";
  const std::string config_path = scratch / "broker.json";
  std::ofstream(config_path) << config;
  const std::string output = scratch / "output";
  const int status =
      std::system((std::string(DRUNC_BROKER_PROGRAM) + " -c " + config_path + " >" + output + " 2>&1").c_str());
  CHECK(status != 0);
  CHECK_THAT(read_file(output), Catch::Contains("journal_directory") && Catch::Contains("missing"));
}

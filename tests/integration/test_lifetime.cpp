// What the local launcher's processes live and die with (issue 11 items 3, 4,
// 6, 8, 9): the broker's death, even by SIGKILL, ends them; a kill's SIGKILL
// never reaches a group that is no longer theirs; an early kill is never
// reported as a clean exit; a log file that cannot be written fails the boot;
// a launcher that the broker no longer reads still stops.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "ssh_fixture.hpp"  // BrokerProgram, TempDir: nothing here needs the sshd

using namespace test;
using drunc::client::ResponseError;

extern char** environ;

namespace {

// Field `index` (1-based, after the command name) of /proc/PID/stat: 3 is the process group.
long stat_field(int pid, int index) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 1; i <= index; ++i) rest >> field;
  return std::stol(field);
}

void kill_all(const std::vector<int>& pids) {
  for (int pid : pids) ::kill(pid, SIGKILL);
}

// Whether this process's local launcher thread sleeps in send_report's wait
// for room: poll(2) (or ppoll) on two fds, the socket's and the stop fd, with
// no timeout. Nothing else on that thread polls two fds for ever (its loop
// sleeps in epoll_wait). The kernel fills /proc/.../syscall only for a task
// that is asleep and stays asleep while it is read (else "running"), so a
// woken launcher on its way out of the wait never matches.
bool launcher_sleeps_in_a_send() {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    if (read_file(task.path() / "comm") != "drunc-local\n") continue;
    std::istringstream fields(read_file(task.path() / "syscall"));
    long number = -1;
    unsigned long fds = 0, count = 0, timeout = 0;
    if (!(fields >> number >> std::hex >> fds >> count >> timeout)) return false;  // "running"
#ifdef SYS_poll
    if (number == SYS_poll) return count == 2 && static_cast<int>(timeout) == -1;  // an int: shown as 0xffffffff
#endif
    return number == SYS_ppoll && count == 2 && timeout == 0;  // no timespec: no timeout
  }
  return false;
}

std::filesystem::perms mode_of(const std::filesystem::path& path) {
  return std::filesystem::symlink_status(path).permissions() & std::filesystem::perms::all;
}

}  // namespace

TEST_CASE("kill -9 of the broker program ends every local process, children included") {
  ssh::TempDir scratch("drunc-lifetime");
  ssh::BrokerProgram program(R"({"name": "lifetime", "control_endpoint": "tcp://127.0.0.1:*",
                                 "events_endpoint": "tcp://127.0.0.1:*", "log_level": "info"})",
                             scratch);
  ssh::ProgramEvents events(program, {"log/"});
  drunc::client::Client client(program.control_endpoint(), kPatience);
  const auto marker = unique_marker("drunc-lifetime-kill9");
  std::set<std::string> uuids;
  for (int i = 0; i < 5; ++i) {
    // A child in the background and the command itself, both with the marker in argv.
    auto request = boot_request("orphan-" + std::to_string(i), "bash",
                                {"-c", "(exec -a \"$0-child\" sleep 300) & echo ready; exec -a \"$0\" sleep 301",
                                 marker + "/" + std::to_string(i)});
    if (i % 2 == 0) request.mutable_process_description()->set_process_logs_path(scratch / ("orphan.log"));
    uuids.insert(boot(client, request));
  }
  events.wait_for_line_from_each(uuids, "ready");
  const auto pids = processes_with_marker(marker);
  REQUIRE(pids.size() >= 10);  // per process: the launch shell, the command, its child

  program.kill_hard();
  const bool gone = wait_until_gone(pids);
  kill_all(processes_with_marker(marker));  // whatever the check found left, so as not to leave it running
  CHECK(gone);
}

TEST_CASE("the SIGKILL after a kill's SIGQUIT never reaches a new group that reuses the pid") {
  const char* last_pid = "/proc/sys/kernel/ns_last_pid";
  if (::access(last_pid, W_OK) != 0) {
    WARN("cannot write " << last_pid << " (needs root): the pid cannot be reused on purpose, test skipped");
    return;
  }
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(1500); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto marker = unique_marker("drunc-pid-reuse");
  // Ends at once on SIGQUIT, long before its SIGKILL deadline (sh and sleep
  // die of it; a non-interactive bash would ignore it until it becomes sleep).
  const auto quick = boot(client, boot_request("quick", "sh", {"-c", "echo ready; exec sleep 300", marker}));
  events.wait_for_line(quick, "ready");
  const auto pids = processes_with_marker(marker);
  REQUIRE_FALSE(pids.empty());
  const auto group = static_cast<pid_t>(stat_field(pids.front(), 3));
  REQUIRE(group > 1);
  CHECK(client.kill(query_uuid(quick)).values(0).return_code() == 131);

  // A new session whose id is the old group's: write group-1 as the last pid
  // given, then spawn; other processes on the machine may take it first, so try again.
  pid_t victim = -1;
  for (int attempt = 0; attempt < 200 && victim != group; ++attempt) {
    if (victim > 0) {
      ::kill(victim, SIGKILL);
      ::waitpid(victim, nullptr, 0);
      victim = -1;
    }
    if (::kill(group, 0) == 0) break;  // the pid is taken by someone else already
    { std::ofstream(last_pid) << group - 1; }
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    const char* argv[] = {"sleep", "300", nullptr};
    if (::posix_spawn(&victim, "/bin/sleep", nullptr, &attributes, const_cast<char* const*>(argv), environ) != 0)
      victim = -1;
    posix_spawnattr_destroy(&attributes);
  }
  if (victim != group) {
    if (victim > 0) {
      ::kill(victim, SIGKILL);
      ::waitpid(victim, nullptr, 0);
    }
    WARN("could not get pid " << group << " again (the machine is busy): test skipped");
    return;
  }

  // Another kill, sent later, whose SIGKILL comes after the first one's
  // deadline: once it is answered, that deadline has passed in the launcher.
  const auto stubborn =
      boot(client, boot_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; while :; do sleep 0.05; done"}));
  events.wait_for_line(stubborn, "ready");
  CHECK(client.kill(query_uuid(stubborn)).values(0).return_code() == 137);

  int status = 0;
  const bool survived = ::waitpid(victim, &status, WNOHANG) == 0;
  ::kill(victim, SIGKILL);
  ::waitpid(victim, nullptr, 0);
  CHECK(survived);
}

TEST_CASE("a kill in the first moments of a start is never reported as a clean exit") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(300); });
  auto client = broker.client();
  ssh::TempDir scratch("drunc-early-kill");
  for (int i = 0; i < 50; ++i) {
    auto request = boot_request("early-" + std::to_string(i), "sleep", {"300"});
    request.mutable_process_description()->set_process_logs_path(scratch / "early.log");
    request.mutable_process_description()->set_process_execution_directory(scratch.path().string());
    const auto uuid = boot(client, request);
    const auto killed = client.kill(query_uuid(uuid));
    REQUIRE(killed.values_size() == 1);
    INFO("boot " << i);
    // 131: the script's trap (before the command) or sleep's death by SIGQUIT;
    // 137: the SIGQUIT came before bash had set its trap, and was ignored.
    CHECK((killed.values(0).return_code() == 131 || killed.values(0).return_code() == 137));
  }
}

TEST_CASE("log file: missing directories are created 0750, the file 0640, and the header written") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  ssh::TempDir scratch("drunc-log-create");
  const auto log = scratch / "new/deeper/app.log";
  auto request = boot_request("logged", "echo", {"hello"});
  request.mutable_process_description()->set_process_logs_path(log);
  const auto uuid = boot(client, request);
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 0);
  CHECK(mode_of(scratch / "new") == std::filesystem::perms(0750));
  CHECK(mode_of(scratch / "new/deeper") == std::filesystem::perms(0750));
  CHECK(mode_of(log) == std::filesystem::perms(0640));
  const auto content = read_file(log);
  CHECK_THAT(content, Catch::StartsWith("=== drunc-zmq: logged uuid " + uuid + " generation 1 on localhost"));
  CHECK_THAT(content, Catch::EndsWith("===\nhello\n"));
}

TEST_CASE("log file: a path that cannot be a log fails the boot with the path and the reason") {
  TestBroker broker;
  auto client = broker.client();
  ssh::TempDir scratch("drunc-log-refused");
  std::filesystem::create_directories(scratch / "directory");
  { std::ofstream(scratch / "precious") << "keep me\n"; }
  std::filesystem::create_symlink(scratch / "precious", scratch / "link");
  REQUIRE(::mkfifo((scratch / "fifo").c_str(), 0600) == 0);
  // A FIFO that has a reader opens without blocking: fstat refuses it.
  REQUIRE(::mkfifo((scratch / "fifo-read").c_str(), 0600) == 0);
  const int reader = ::open((scratch / "fifo-read").c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {scratch / "directory", "it is a directory"}, {"/dev/full", "not a regular file"},
      {scratch / "fifo", "not a regular file"},     {scratch / "fifo-read", "not a regular file"},
      {scratch / "link", "symbolic link"},
  };
  for (const auto& [path, why] : cases) {
    auto request = boot_request("unloggable", "echo", {"must not run"});
    request.mutable_process_description()->set_process_logs_path(path);
    INFO(path);
    try {
      client.boot(request);
      FAIL("the boot succeeded");
    } catch (const ResponseError& error) {
      CHECK_THAT(error.text(), Catch::Contains(path) && Catch::Contains(why));
    }
  }
  ::close(reader);
  CHECK(read_file(scratch / "precious") == "keep me\n");
  const auto listed = client.ps();
  CHECK(listed.values_size() == 0);  // nothing was left RUNNING
}

TEST_CASE("a launcher whose reports the broker no longer reads still stops") {
  spdlog::set_level(spdlog::level::off);  // the failure's critical line is the point
  std::promise<std::string> failure;
  drunc::broker::Config config;
  config.name = "test-pm";
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  auto broker =
      std::make_unique<drunc::broker::Broker>(config, [&](const std::string& reason) { failure.set_value(reason); });
  drunc::client::Client client(broker->control_endpoint(), kPatience);
  const auto marker = unique_marker("drunc-flood");
  // The launcher blocks once about 2,000 reports (ZeroMQ's high-water marks)
  // wait in its pipe to the broker, one report per read of yes's output. A
  // pipe of one page (not 64 KiB) keeps those reads small: filling the pipe
  // to the broker then takes ~8 MB of output, not ~130 MB, which took the
  // launcher longer than kPatience under ASan or TSan on a busy machine.
  const auto line = marker + " " + std::string(500, 'x');
  {
    Events events(broker->events_endpoint(), client, {"log/"});
    const auto uuid = boot(client, boot_request("flood", "/usr/bin/python3",
                                                {"-c",
                                                 "import fcntl, os, sys\n"
                                                 "fcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 4096)\n"
                                                 "os.execvp('yes', ['yes', sys.argv[1]])",
                                                 line}));
    events.wait_for_line(uuid, line);  // yes is running
  }
  const auto pids = processes_with_marker(marker);
  REQUIRE(pids.size() >= 1);

  // The broker thread dies: nobody reads the launcher's reports any more. It
  // fills the pipe to the broker, then waits in a send for room. Once it
  // sleeps there after the broker thread died, nothing but its stop can wake
  // it: a command the broker sent before dying would have woken it already.
  // So one sighting proves it; there is no event for it, hence the polling.
  broker->inject_fault_for_test("fault");
  REQUIRE(failure.get_future().wait_for(kPatience) == std::future_status::ready);
  const auto blocked_until = std::chrono::steady_clock::now() + kPatience;
  bool blocked = false;
  while (!(blocked = launcher_sleeps_in_a_send()) && std::chrono::steady_clock::now() < blocked_until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(blocked);

  // Destroying the broker stops the launcher, which must not wait for the broker forever.
  auto stopped = std::make_shared<std::promise<void>>();
  std::thread([broker = std::move(broker), stopped]() mutable {
    broker.reset();
    stopped->set_value();
  }).detach();
  const bool returned = stopped->get_future().wait_for(kPatience) == std::future_status::ready;
  spdlog::set_level(spdlog::level::warn);
  if (!returned) kill_all(processes_with_marker(marker));
  REQUIRE(returned);
  CHECK(wait_until_gone(pids));
}

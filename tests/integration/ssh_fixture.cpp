#include "ssh_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "launch_script.hpp"  // shell_quote

extern char** environ;

namespace test::ssh {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// "ssh-ed25519 AAAA..." from a public key file or a known_hosts-like line (first two fields).
std::string key_fields(const std::string& line) {
  std::istringstream in(line);
  std::string type, key;
  in >> type >> key;
  return type + " " + key;
}

// The parent pid and command name (comm) of pid, from /proc; -1 if gone.
int parent_of(int pid, std::string* comm = nullptr) {
  const auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto open = stat.find('(');
  const auto close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return -1;
  if (comm) *comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  int parent = -1;
  rest >> state >> parent;
  return parent;
}

// The wait status of our child pid once it has exited (waiting on its pidfd
// up to patience), or nullopt if it still runs.
std::optional<int> reap(pid_t pid, std::chrono::milliseconds patience) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    pollfd poll_fd{fd, POLLIN, 0};
    ::poll(&poll_fd, 1, static_cast<int>(patience.count()));
    ::close(fd);
  }
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
  return status;
}

bool wait_for_exit(pid_t pid, std::chrono::milliseconds patience) { return reap(pid, patience).has_value(); }

}  // namespace

std::string state_dir() {
  const char* from_env = std::getenv("DRUNC_TEST_SSHD_STATE");
  const std::string state = from_env && *from_env ? from_env : "/tmp/drunc-test-sshd";
  const auto pid_text = read_text(state + "/sshd.pid");
  const int pid = pid_text.empty() ? 0 : std::atoi(pid_text.c_str());
  if (pid <= 0 || ::kill(pid, 0) != 0)
    FAIL("the test sshd is not running (state " + state +
         "): run these tests with ctest (fixture sshd), or tests/fixtures/sshd.sh start first");
  return state;
}

std::string client_key() { return state_dir() + "/client_ed25519"; }
std::string known_hosts() { return state_dir() + "/known_hosts"; }

int listener_pid() { return std::atoi(read_text(state_dir() + "/sshd.pid").c_str()); }

TempDir::TempDir(const std::string& base, std::filesystem::perms mode)
    : path_(std::filesystem::temp_directory_path() / unique_marker(base)) {
  std::filesystem::create_directories(path_);
  std::filesystem::permissions(path_, mode);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

drunc::workers::SshSettings& ssh_settings(drunc::broker::Config& config) {
  return config.backends.get<drunc::workers::SshSettings>();
}

void configure(drunc::broker::Config& config, const TempDir& scratch) {
  auto& ssh = ssh_settings(config);
  ssh.default_user = kUser;
  ssh.default_port = kPort;
  ssh.key_files = {client_key()};
  ssh.use_agent = false;
  ssh.known_hosts_files = {known_hosts()};
  ssh.accepted_hosts_file = scratch / "accepted_hosts";
  ssh.host_key_policy = drunc::workers::HostKeyPolicy::strict;
}

pm::BootRequest remote_request(const std::string& name, const std::string& exec, const std::vector<std::string>& args,
                               const std::vector<std::string>& hosts, const std::string& session) {
  auto request = boot_request(name, exec, args, session);
  request.mutable_process_description()->mutable_metadata()->set_user(kUser);
  auto* restriction = request.mutable_process_restriction();
  restriction->clear_allowed_hosts();
  for (const auto& host : hosts) restriction->add_allowed_hosts(host);
  return request;
}

pm::BootRequest marked_sleep(const std::string& name, const std::string& marker, const std::vector<std::string>& hosts,
                             const std::string& session) {
  // "ready" comes from a background helper once the process has become sleep,
  // so that a kill after "ready" finds sleep (bash would ignore SIGQUIT).
  const std::string script =
      "{ until read -r command </proc/$$/comm && [ \"$command\" = sleep ]; do sleep 0.01; done; echo ready; } & "
      "exec -a \"$0\" sleep 300";
  return remote_request(name, "bash", {"-c", script, marker}, hosts, session);
}

pm::Response boot_response(drunc::client::Client& client, const pm::BootRequest& request) {
  const auto id = client.send(drunc::wire::Command::boot, &request);
  return client.wait(id, kPatience).response;
}

std::map<std::string, pm::ProcessInstance> wait_for_states(Events& events, std::set<std::string> uuids,
                                                           const std::string& transition) {
  std::map<std::string, pm::ProcessInstance> found;
  while (!uuids.empty()) {
    const auto event = events.wait_for([&](const drunc::client::Event& event) {
      if (event.topic.rfind("state/", 0) != 0 || event.meta.transition() != transition) return false;
      pm::ProcessInstance candidate;
      return candidate.ParseFromString(event.payload) && uuids.count(candidate.uuid().uuid()) == 1;
    });
    pm::ProcessInstance instance;
    instance.ParseFromString(event.payload);
    uuids.erase(instance.uuid().uuid());
    found[instance.uuid().uuid()] = instance;
  }
  return found;
}

void wait_for_line_from_each(Events& events, std::set<std::string> uuids, const std::string& text) {
  while (!uuids.empty()) {
    events.wait_for([&](const drunc::client::Event& event) {
      pm::LogLine line;
      return event.topic.rfind("log/", 0) == 0 && line.ParseFromString(event.payload) && line.line() == text &&
             uuids.erase(line.uuid().uuid()) == 1;
    });
  }
}

std::vector<int> sshd_chain_of(int pid) {
  const int listener = listener_pid();
  std::vector<int> chain;
  for (int current = pid; current > 1;) {
    std::string comm;
    const int parent = parent_of(current, &comm);
    if (parent < 0) return {};
    if (comm.rfind("sshd", 0) == 0) chain.push_back(current);
    if (parent == listener) return chain;
    current = parent;
  }
  return {};
}

int connection_of(int pid) {
  const int listener = listener_pid();
  for (int current = pid; current > 1;) {
    const int parent = parent_of(current);
    if (parent < 0) return 0;
    if (parent == listener) return current;
    current = parent;
  }
  return 0;
}

std::vector<int> connections() {
  const int listener = listener_pid();
  std::vector<int> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(name);
    if (parent_of(pid) == listener) children.push_back(pid);
  }
  return children;
}

void kill_hard(const std::vector<int>& pids) {
  for (int pid : pids) ::kill(pid, SIGKILL);
}

SilentListener::SilentListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  REQUIRE(::inet_pton(AF_INET, "127.0.0.10", &address.sin_addr) == 1);
  REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd_, 1) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  port_ = ntohs(address.sin_port);
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string SilentListener::host_port() const { return "127.0.0.10:" + std::to_string(port_); }

std::string run(const std::string& command, bool allow_failure, int* status) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int raw = ::pclose(pipe);
  const int code = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  if (status) *status = code;
  if (!allow_failure && code != 0) FAIL("`" + command + "` failed with status " + std::to_string(code) + ": " + output);
  return output;
}

std::string other_host_key(const TempDir& scratch) {
  const auto path = scratch / unique_marker("other_host_key");
  run("ssh-keygen -q -t ed25519 -N '' -C other-host -f " + drunc::workers::shell_quote(path));
  return key_fields(read_text(path + ".pub"));
}

std::string server_host_key() { return key_fields(read_text(state_dir() + "/host_ed25519.pub")); }

std::string server_fingerprint() {
  // "256 SHA256:xxxx comment (ED25519)"
  std::istringstream in(
      run("ssh-keygen -l -E sha256 -f " + drunc::workers::shell_quote(state_dir() + "/host_ed25519.pub")));
  std::string bits, fingerprint;
  in >> bits >> fingerprint;
  REQUIRE(fingerprint.rfind("SHA256:", 0) == 0);
  return fingerprint;
}

std::string write_known_hosts(const TempDir& scratch, const std::string& name,
                              const std::map<std::string, std::string>& replaced,
                              const std::set<std::string>& omitted) {
  const auto path = scratch / name;
  std::ofstream file(path);
  const auto key = server_host_key();
  for (const auto& host : kHosts) {
    if (omitted.count(host)) continue;
    const auto other = replaced.find(host);
    file << "[" << host << "]:" << kPort << " " << (other != replaced.end() ? other->second : key) << "\n";
  }
  return path;
}

BrokerProgram::BrokerProgram(const std::string& config_json, const TempDir& scratch) {
  const auto config_path = scratch / unique_marker("broker") + ".json";
  { std::ofstream(config_path) << config_json; }
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  const std::string program = DRUNC_BROKER_PROGRAM;
  std::vector<std::string> arguments = {program, "-c", config_path};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  const int spawned = ::posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  out_fd_ = fds[0];
  REQUIRE(spawned == 0);

  try {
    wait_until_serving();
  } catch (...) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    ::close(out_fd_);
    out_fd_ = -1;
    throw;
  }
  drain_ = std::thread([this] {
    while (!stop_) {
      pollfd poll_fd{out_fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 100) <= 0) continue;
      char buffer[4096];
      const auto n = ::read(out_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      std::lock_guard lock(mutex_);
      output_.append(buffer, static_cast<std::size_t>(n));
    }
  });
}

void BrokerProgram::wait_until_serving() {
  const std::regex ready(R"(serving on (tcp://\S+), events on (tcp://\S+))");
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  std::smatch match;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (std::regex_search(output_, match, ready)) {
        control_ = match[1];
        events_ = match[2];
        break;
      }
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) FAIL("drunc-broker printed no 'serving on' line; output:\n" + output());
    pollfd poll_fd{out_fd_, POLLIN, 0};
    if (::poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const auto n = ::read(out_fd_, buffer, sizeof buffer);
    if (n <= 0) FAIL("drunc-broker exited before serving; output:\n" + output());
    std::lock_guard lock(mutex_);
    output_.append(buffer, static_cast<std::size_t>(n));
  }
}

BrokerProgram::~BrokerProgram() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    if (!wait_for_exit(pid_, kPatience)) {
      ::kill(pid_, SIGKILL);
      wait_for_exit(pid_, kPatience);
    }
  }
  stop_ = true;
  if (drain_.joinable()) drain_.join();
  if (out_fd_ >= 0) ::close(out_fd_);
}

void BrokerProgram::kill_hard() {
  REQUIRE(pid_ > 0);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

Agent::Agent(const TempDir& scratch) : socket_(scratch / unique_marker("agent") + ".sock") {
  int lifeline[2];
  int output[2];
  REQUIRE(::pipe2(lifeline, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(output, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, lifeline[0], 0);
  posix_spawn_file_actions_adddup2(&actions, output[1], 1);
  std::vector<std::string> arguments = {"bash", "-c",
                                        "ssh-agent -D -a \"$0\" </dev/null & agent=$!\n"
                                        "read -r _\n"
                                        "kill \"$agent\"; wait \"$agent\"",
                                        socket_};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  const int spawned = ::posix_spawnp(&pid_, "bash", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(lifeline[0]);
  ::close(output[1]);
  lifeline_ = lifeline[1];
  output_ = output[0];
  REQUIRE(spawned == 0);
  // ssh-agent says "SSH_AUTH_SOCK=...;" once its socket listens.
  std::string said;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (said.find("SSH_AUTH_SOCK=") == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) FAIL("ssh-agent did not start: " + said);
    pollfd poll_fd{output_, POLLIN, 0};
    if (::poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[512];
    const auto n = ::read(output_, buffer, sizeof buffer);
    if (n <= 0) FAIL("ssh-agent exited: " + said);
    said.append(buffer, static_cast<std::size_t>(n));
  }
  run("SSH_AUTH_SOCK=" + drunc::workers::shell_quote(socket_) + " ssh-add -q " +
      drunc::workers::shell_quote(client_key()));
}

Agent::~Agent() {
  if (lifeline_ >= 0) ::close(lifeline_);  // the watcher kills the agent
  if (pid_ > 0) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (output_ >= 0) ::close(output_);
}

ProgramEvents::ProgramEvents(const BrokerProgram& broker, const std::vector<std::string>& prefixes)
    : subscriber_(broker.events_endpoint(), prefixes) {
  drunc::client::Client client(broker.control_endpoint(), kPatience);
  REQUIRE(subscriber_.wait_until_live(client, kPatience));
}

void ProgramEvents::wait_for_line_from_each(std::set<std::string> uuids, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!uuids.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) FAIL("the expected log line \"" + text + "\" did not come");
    auto event = subscriber_.next(left);
    pm::LogLine line;
    if (event && event->topic.rfind("log/", 0) == 0 && line.ParseFromString(event->payload) && line.line() == text)
      uuids.erase(line.uuid().uuid());
  }
}

int BrokerProgram::stop() {
  REQUIRE(pid_ > 0);
  ::kill(pid_, SIGTERM);
  int code = -1;
  if (const auto status = reap(pid_, kPatience)) {
    code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
  } else {
    ::kill(pid_, SIGKILL);
    int ignored = 0;
    ::waitpid(pid_, &ignored, 0);
  }
  pid_ = -1;
  return code;
}

std::string BrokerProgram::output() const {
  std::lock_guard lock(mutex_);
  return output_;
}

}  // namespace test::ssh

#include "broker_program.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "client.hpp"

extern char** environ;

namespace bench {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

bool is_number(const char* name) {
  if (!*name) return false;
  for (; *name; ++name)
    if (*name < '0' || *name > '9') return false;
  return true;
}

}  // namespace

std::string broker_program_path(const std::string& path) {
  if (!path.empty()) return path;
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw std::runtime_error("cannot read /proc/self/exe: give --broker");
  return (self.parent_path().parent_path() / "broker" / "drunc-broker").string();
}

BrokerProgram::BrokerProgram(const std::string& program, const std::string& extra_settings, const std::string& cpus) {
  if (::access(program.c_str(), X_OK) != 0)
    throw std::runtime_error("no drunc-broker at " + program + ": give --broker");
  char pattern[] = "/tmp/drunc-bench-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  log_path_ = directory_ + "/broker.log";
  control_endpoint_ = "ipc://" + directory_ + "/control";
  events_endpoint_ = "ipc://" + directory_ + "/events";
  const std::string config_path = directory_ + "/broker.json";
  {
    std::ofstream config(config_path);
    config << "{\n  \"name\": \"drunc-bench\",\n  \"control_endpoint\": \"" << control_endpoint_
           << "\",\n  \"events_endpoint\": \"" << events_endpoint_ << "\",\n  \"log_level\": \"warn\"";
    if (!extra_settings.empty()) config << ",\n  " << extra_settings;
    config << "\n}\n";
    if (!config) throw std::runtime_error("cannot write " + config_path);
  }
  std::vector<std::string> arguments;
  if (!cpus.empty()) arguments = {"taskset", "-c", cpus};
  arguments.insert(arguments.end(), {program, "--config", config_path});
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // taskset execs the broker, so the pid is the broker's either way.
  const int failed = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (failed != 0) throw std::runtime_error("cannot start " + arguments[0]);

  drunc::client::Client client(control_endpoint_, std::chrono::milliseconds(200));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("drunc-broker exited at start: " + read_all(log_path_));
    }
    try {
      client.describe();
      return;
    } catch (const drunc::client::TimeoutError&) {
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("drunc-broker does not answer: " + read_all(log_path_));
      }
    }
  }
}

int BrokerProgram::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

BrokerProgram::~BrokerProgram() {
  stop();
  std::error_code ignored;
  if (!std::getenv("DRUNC_BENCH_KEEP")) std::filesystem::remove_all(directory_, ignored);
}

ProcessSample sample_process(pid_t pid) {
  ProcessSample sample;
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream status(base + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) sample.rss_kib = std::stod(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) sample.threads = std::stoi(line.substr(8));
  }
  if (DIR* fds = ::opendir((base + "/fd").c_str())) {
    while (const dirent* entry = ::readdir(fds))
      if (is_number(entry->d_name)) ++sample.fds;
    ::closedir(fds);
  }
  if (DIR* proc = ::opendir("/proc")) {
    while (const dirent* entry = ::readdir(proc)) {
      if (!is_number(entry->d_name)) continue;
      const std::string stat = read_all(std::string("/proc/") + entry->d_name + "/stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      // After "pid (comm) ": state, then ppid.
      std::istringstream fields(stat.substr(close + 2));
      char state = 0;
      pid_t parent = 0;
      if (!(fields >> state >> parent) || parent != pid) continue;
      if (state == 'Z')
        ++sample.zombies;
      else
        ++sample.children;
    }
    ::closedir(proc);
  }
  return sample;
}

int count_processes_with_command_line(const std::string& argv) {
  int count = 0;
  if (DIR* proc = ::opendir("/proc")) {
    while (const dirent* entry = ::readdir(proc)) {
      if (!is_number(entry->d_name)) continue;
      std::string command_line = read_all(std::string("/proc/") + entry->d_name + "/cmdline");
      if (!command_line.empty() && command_line.back() == '\0') command_line.pop_back();
      for (char& c : command_line)
        if (c == '\0') c = ' ';
      if (command_line == argv) ++count;
    }
    ::closedir(proc);
  }
  return count;
}

double load_average() {
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return load;
}

}  // namespace bench

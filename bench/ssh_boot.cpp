#include "ssh_boot.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "broker_program.hpp"
#include "client.hpp"
#include "report.hpp"
#include "sessions.hpp"
#include "ssh/ssh_settings.hpp"
#include "thread_cpu.hpp"

extern char** environ;

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;
using drunc::wire::Command;

constexpr const char* kSession = "sshboot";
// What every method runs. The shell methods print their pid too ($$: the
// shell that becomes sleep), so that the bench ends them by pid afterwards.
constexpr const char* kCommand = "echo ready; exec sleep 2999";
constexpr const char* kShellCommand = "echo ready $$; exec sleep 2999";
constexpr const char* kLeftover = "sleep 2999";
constexpr auto kDeadline = std::chrono::seconds(180);

const char* method_title(const std::string& method) {
  if (method == "sequential") return "one ssh client per process, one after another";
  if (method == "parallel") return "ssh clients in parallel, at MaxStartups";
  return "ControlMaster, MaxSessions clients per master";
}

// ---- Child processes ---------------------------------------------------------------

// Starts argv with stdin and stderr on /dev/null and stdout on a pipe whose
// read end (non-blocking) is returned in `out`; or on /dev/null if out is null.
pid_t spawn(const std::vector<std::string>& args, int* out) {
  int fds[2] = {-1, -1};
  if (out && ::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  else
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  if (!std::getenv("DRUNC_BENCH_DEBUG")) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv;
  for (const auto& argument : args) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int failed = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out) {
    ::close(fds[1]);
    if (failed) ::close(fds[0]);
  }
  if (failed) throw std::runtime_error("cannot start " + args[0]);
  if (out) {
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    *out = fds[0];
  }
  return pid;
}

std::vector<std::string> ssh_args(const SshTarget& target, const std::string& host,
                                  const std::vector<std::string>& extra, const std::string& command) {
  std::vector<std::string> args = {"ssh",
                                   "-F",
                                   "/dev/null",
                                   "-i",
                                   target.state + "/client_ed25519",
                                   "-o",
                                   "IdentitiesOnly=yes",
                                   "-o",
                                   "UserKnownHostsFile=" + target.state + "/known_hosts",
                                   "-o",
                                   "StrictHostKeyChecking=yes",
                                   "-o",
                                   "BatchMode=yes",
                                   "-p",
                                   std::to_string(target.port)};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(target.user + "@" + host);
  if (!command.empty()) args.push_back(command);
  return args;
}

// What a shell user runs to have the output both streamed back and appended
// to a log file, as drunc-zmq's remote script does (it tees too).
std::string shell_command(const std::string& log_directory, const std::string& name) {
  const std::string log = log_directory.empty() ? "/dev/null" : log_directory + "/" + name + ".log";
  return std::string("sh -c '") + kShellCommand + "' 2>&1 | tee -a " + log;
}

// One ssh client of a shell method, until its remote command printed "ready PID".
struct Client {
  pid_t pid = -1;
  int out = -1;
  std::string buffer;
  long remote = 0;  // the remote command's pid, from its first line
};

// Reads what is there: 1 once the first line is in, -1 at end of output
// before it (the client failed, e.g. refused by MaxStartups), 0 otherwise.
int read_first_line(Client& client) {
  char chunk[512];
  for (;;) {
    const ssize_t n = ::read(client.out, chunk, sizeof chunk);
    if (n > 0) {
      client.buffer.append(chunk, static_cast<std::size_t>(n));
      if (client.buffer.find('\n') == std::string::npos) continue;
      if (std::sscanf(client.buffer.c_str(), "ready %ld", &client.remote) != 1 || client.remote <= 0)
        throw std::runtime_error("unexpected first line: " + client.buffer);
      return 1;
    }
    if (n == 0) return -1;
    if (errno == EINTR) continue;
    return errno == EAGAIN ? 0 : -1;
  }
}

void reap(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// Waits for pid until `deadline`, then SIGKILLs it.
void reap_by(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    const pid_t done = ::waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return;
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      reap(pid);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---- The test sshd and what is left behind --------------------------------------

pid_t sshd_listener(const SshTarget& target) {
  pid_t pid = 0;
  std::ifstream(target.state + "/sshd.pid") >> pid;
  if (pid <= 0)
    throw std::runtime_error("no test sshd (" + target.state + "/sshd.pid): run tests/fixtures/sshd.sh start");
  return pid;
}

// Waits until the sshd has no connection left and no `sleep 2999` runs on
// the machine (the hosts are loopback addresses of it); returns what is
// still there after 30 s (connections + processes), 0 when clean.
int wait_until_clean(const SshTarget& target) {
  const pid_t listener = sshd_listener(target);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    const auto sample = sample_process(listener);
    const int left = sample.children + sample.zombies + count_processes_with_command_line(kLeftover);
    if (left == 0 || Clock::now() > deadline) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// CPU time (user + system, seconds) of the two sides, read once nothing is
// left (wait_until_clean), so that the difference between two readings is
// what one method cost. client: the children this process reaped (ssh
// clients and masters; drunc-zmq's broker threads are counted apart, by
// name); server: the test sshd listener's reaped descendants (each
// connection's sshd processes, and through them the login shells, wrappers,
// tee and commands, all waited for by their parents).
struct CpuTimes {
  double client = 0, server = 0;
};

CpuTimes cpu_times(const SshTarget& target) {
  CpuTimes times;
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  times.client = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  std::ifstream stat("/proc/" + std::to_string(sshd_listener(target)) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close != std::string::npos) {
    // After "pid (comm) ": fields 3 to 52; utime, stime, cutime, cstime are 14 to 17.
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int number = 3; number <= 17 && (fields >> field); ++number)
      if (number >= 14) ticks += std::stod(field);
    times.server = ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return times;
}

// The in-process broker's own threads (its ZeroMQ I/O thread is named like
// the clients' and left out).
double broker_threads_cpu() {
  double seconds = thread_cpu_seconds("drunc-broker");
  for (int worker = 0; worker < 64; ++worker) seconds += thread_cpu_seconds("drunc-ssh-" + std::to_string(worker));
  return seconds;
}

void prepare_log_directory(const SshTarget& target, const std::string& directory) {
  if (directory.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
  std::filesystem::create_directories(directory);
  const passwd* user = ::getpwnam(target.user.c_str());
  if (!user || ::chown(directory.c_str(), user->pw_uid, user->pw_gid) != 0)
    throw std::runtime_error("cannot give " + directory + " to " + target.user);
}

// Checks that each of the `count` log files NAME-i.log holds the ready line, then removes them all.
int check_and_clear_logs(const std::string& directory, const std::string& prefix, int count) {
  if (directory.empty()) return 0;
  int missing = 0;
  for (int i = 0; i < count; ++i) {
    std::ifstream log(directory + "/" + prefix + std::to_string(i) + ".log");
    std::string line;
    bool found = false;
    while (std::getline(log, line))
      if (line.rfind("ready", 0) == 0) found = true;
    if (!found) ++missing;
  }
  for (const auto& entry : std::filesystem::directory_iterator(directory)) std::filesystem::remove(entry.path());
  return missing;
}

// ---- The shell methods --------------------------------------------------------------

class ShellMethod {
 public:
  ShellMethod(const SshTarget& target, const SshBootOptions& options, int count)
      : target_(target), options_(options), count_(count), clients_(static_cast<std::size_t>(count)) {}
  ShellMethod(const ShellMethod&) = delete;
  ShellMethod& operator=(const ShellMethod&) = delete;
  ~ShellMethod() { cleanup(); }

  const std::string& host_of(int i) const { return target_.hosts[static_cast<std::size_t>(i) % target_.hosts.size()]; }
  std::string name_of(int i) const { return "shell-" + std::to_string(i); }

  // One client after another, each waited for until its command runs.
  double sequential() {
    const auto start = Clock::now();
    for (int i = 0; i < count_;) {
      start_client(i, {});
      pollfd fd{clients_[i].out, POLLIN, 0};
      int state = 0;
      while ((state = read_first_line(clients_[i])) == 0) {
        ::poll(&fd, 1, 100);
        check_deadline(start);
      }
      if (state < 0)
        failed_client(i);
      else
        ++i;
    }
    return seconds_since(start);
  }

  // The sequential method's kill: SIGQUIT to each client, 0.5 s apart (then
  // SIGKILL). The remote commands survive it (a flaw of the method); cleanup() ends them.
  double sequential_kill() {
    const auto start = Clock::now();
    for (auto& client : clients_) {
      ::kill(client.pid, SIGQUIT);
      ::usleep(500'000);
      if (::waitpid(client.pid, nullptr, WNOHANG) == 0) {
        ::kill(client.pid, SIGKILL);
        reap(client.pid);
      }
      client.pid = -1;
    }
    return seconds_since(start);
  }

  // Clients in parallel, `startups` of them handshaking at any time (the
  // server's MaxStartups: more are refused at random); the next one starts
  // as soon as one has its command running.
  double parallel() {
    std::deque<int> todo;
    for (int i = 0; i < count_; ++i) todo.push_back(i);
    std::vector<int> starting;
    const auto start = Clock::now();
    int ready = 0;
    while (ready < count_) {
      while (static_cast<int>(starting.size()) < options_.startups && !todo.empty()) {
        start_client(todo.front(), {});
        starting.push_back(todo.front());
        todo.pop_front();
      }
      wait_for_output(starting, 10);
      for (std::size_t k = 0; k < starting.size();) {
        const int i = starting[k];
        const int state = read_first_line(clients_[i]);
        if (state == 0) {
          ++k;
          continue;
        }
        starting.erase(starting.begin() + static_cast<long>(k));
        if (state > 0) {
          ++ready;
        } else {
          failed_client(i);
          todo.push_front(i);
        }
      }
      check_deadline(start);
    }
    return seconds_since(start);
  }

  // ControlMaster: per host, one master per `sessions` processes, opened
  // `startups` at a time (`ssh -fNM`: the foreground ssh exits once the
  // master is authenticated and listening); as soon as a master is up, its
  // `sessions` clients start over it at once (`ssh -S`), no handshake each.
  double control_master() {
    struct Master {
      std::string host, socket;
      std::vector<int> processes;
      pid_t pid = -1;  // the foreground ssh, until it exits
    };
    std::vector<Master> masters;
    std::map<std::string, std::vector<int>> by_host;
    for (int i = 0; i < count_; ++i) by_host[host_of(i)].push_back(i);
    for (const auto& [host, processes] : by_host)
      for (std::size_t first = 0; first < processes.size(); first += static_cast<std::size_t>(options_.sessions)) {
        Master master;
        master.host = host;
        master.socket = socket_directory() + "/m" + std::to_string(masters.size());
        const auto last = std::min(processes.size(), first + static_cast<std::size_t>(options_.sessions));
        master.processes.assign(processes.begin() + static_cast<long>(first),
                                processes.begin() + static_cast<long>(last));
        masters.push_back(std::move(master));
      }
    masters_ = static_cast<int>(masters.size());
    std::deque<std::size_t> todo;
    for (std::size_t m = 0; m < masters.size(); ++m) todo.push_back(m);
    std::vector<std::size_t> opening;
    std::vector<int> starting;
    std::map<int, std::size_t> master_of;
    const auto start = Clock::now();
    int ready = 0;
    while (ready < count_) {
      while (static_cast<int>(opening.size()) < options_.startups && !todo.empty()) {
        auto& master = masters[todo.front()];
        master.pid = spawn(
            ssh_args(target_, master.host, {"-f", "-N", "-M", "-S", master.socket, "-o", "ControlPersist=no"}, ""),
            nullptr);
        opening.push_back(todo.front());
        todo.pop_front();
      }
      for (std::size_t k = 0; k < opening.size();) {
        auto& master = masters[opening[k]];
        int status = 0;
        if (::waitpid(master.pid, &status, WNOHANG) != master.pid) {
          ++k;
          continue;
        }
        master.pid = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
          sockets_.push_back({master.host, master.socket});
          for (const int i : master.processes) {
            start_client(i, {"-S", master.socket, "-o", "ControlMaster=no"});
            starting.push_back(i);
            master_of[i] = opening[k];
          }
        } else {
          ++retries_;  // refused (MaxStartups): open it again
          ::unlink(master.socket.c_str());
          todo.push_front(opening[k]);
        }
        opening.erase(opening.begin() + static_cast<long>(k));
      }
      wait_for_output(starting, opening.empty() ? 10 : 1);
      for (std::size_t k = 0; k < starting.size();) {
        const int i = starting[k];
        const int state = read_first_line(clients_[i]);
        if (state == 0) {
          ++k;
          continue;
        }
        if (state > 0) {
          ++ready;
          starting.erase(starting.begin() + static_cast<long>(k));
        } else {
          failed_client(i);
          start_client(i, {"-S", masters[master_of[i]].socket, "-o", "ControlMaster=no"});
          ++k;
        }
      }
      check_deadline(start);
    }
    return seconds_since(start);
  }

  // Ends every remote command by its pid (its tee then sees the end of its
  // input, its shell exits, its channel closes, its client exits), reaps
  // the clients, closes the masters and reaps them.
  void cleanup() {
    for (auto& client : clients_)
      if (client.remote > 0) ::kill(static_cast<pid_t>(client.remote), SIGKILL);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (auto& client : clients_) {
      if (client.pid > 0) reap_by(client.pid, deadline);
      if (client.out >= 0) ::close(client.out);
      client = Client{};
    }
    for (const auto& [host, socket] : sockets_) {
      const pid_t pid = spawn(ssh_args(target_, host, {"-S", socket, "-O", "exit"}, ""), nullptr);
      reap(pid);
    }
    sockets_.clear();
    // The masters forked away from the foreground ssh; this process is their
    // subreaper (run_ssh_*), so they come back to be reaped here.
    while (Clock::now() < deadline) {
      const pid_t done = ::waitpid(-1, nullptr, WNOHANG);
      if (done < 0) break;  // ECHILD: none left
      if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!socket_directory_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(socket_directory_, ignored);
      socket_directory_.clear();
    }
  }

  int retries() const { return retries_; }
  int masters() const { return masters_; }

 private:
  void start_client(int i, const std::vector<std::string>& extra) {
    auto& client = clients_[static_cast<std::size_t>(i)];
    client = Client{};
    client.pid =
        spawn(ssh_args(target_, host_of(i), extra, shell_command(options_.log_directory, name_of(i))), &client.out);
  }

  void failed_client(int i) {
    auto& client = clients_[static_cast<std::size_t>(i)];
    reap(client.pid);
    ::close(client.out);
    client = Client{};
    if (++retries_ > 10 * count_) throw std::runtime_error("the ssh clients keep failing");
  }

  void wait_for_output(const std::vector<int>& which, int timeout_ms) {
    std::vector<pollfd> fds;
    for (const int i : which) fds.push_back({clients_[static_cast<std::size_t>(i)].out, POLLIN, 0});
    if (fds.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    else
      ::poll(fds.data(), fds.size(), timeout_ms);
  }

  void check_deadline(Clock::time_point start) const {
    if (Clock::now() - start > kDeadline) throw std::runtime_error("a shell method took longer than 180 s");
  }

  const std::string& socket_directory() {
    if (socket_directory_.empty()) {
      char pattern[] = "/tmp/drunc-bench-cm-XXXXXX";
      if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
      socket_directory_ = pattern;
    }
    return socket_directory_;
  }

  const SshTarget& target_;
  const SshBootOptions& options_;
  int count_;
  std::vector<Client> clients_;
  std::vector<std::pair<std::string, std::string>> sockets_;  // host, control socket of each master up
  std::string socket_directory_;
  int retries_ = 0;
  int masters_ = 0;
};

struct ShellFigures {
  double boot = 0, kill = 0;
  CpuTimes cpu;  // per start, from before the boot to all cleaned up
  int retries = 0, masters = 0, logs_missing = 0, left = 0;
};

ShellFigures run_shell_method(const std::string& method, const SshTarget& target, const SshBootOptions& options,
                              int count) {
  ShellFigures figures;
  const CpuTimes before = cpu_times(target);
  {
    ShellMethod shell(target, options, count);
    if (method == "sequential") {
      figures.boot = shell.sequential();
      if (options.sequential_kill) figures.kill = shell.sequential_kill();
    } else if (method == "parallel") {
      figures.boot = shell.parallel();
    } else {
      figures.boot = shell.control_master();
    }
    shell.cleanup();
    figures.retries = shell.retries();
    figures.masters = shell.masters();
  }
  figures.left = wait_until_clean(target);
  const CpuTimes after = cpu_times(target);
  figures.cpu = {(after.client - before.client) / count, (after.server - before.server) / count};
  figures.logs_missing = check_and_clear_logs(options.log_directory, "shell-", count);
  return figures;
}

// ---- drunc-zmq ------------------------------------------------------------------------

struct DruncFigures {
  double running = 0;      // every boot answered RUNNING
  double first_lines = 0;  // every process's first line received on the event feed
  double kill = 0;         // terminate, until every process is DEAD
  double rss_mib = 0;      // drunc-broker as a program only
  int threads = 0;
  CpuTimes cpu;  // per start, from before the broker starts to all cleaned up (in-process broker only)
  int logs_missing = 0, left = 0;
};

// Boots `count` processes pipelined from one client and returns when every
// answer is in and every first line has come on the feed; then terminates them.
void boot_and_terminate(drunc::client::Client& client, drunc::client::Subscriber& feed,
                        const std::vector<std::string>& hosts, int count, const std::string& log_directory,
                        DruncFigures& figures, const std::function<void()>& before_kill) {
  std::unordered_set<std::string> pending;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    pm::BootRequest request;
    auto* description = request.mutable_process_description();
    description->mutable_metadata()->set_name("drunc-" + std::to_string(i));
    description->mutable_metadata()->set_session(kSession);
    auto* command = description->add_executable_and_arguments();
    command->set_exec("sh");
    command->add_args("-c");
    command->add_args(kCommand);
    if (!log_directory.empty())
      description->set_process_logs_path(log_directory + "/drunc-" + std::to_string(i) + ".log");
    request.mutable_process_restriction()->add_allowed_hosts(hosts[static_cast<std::size_t>(i) % hosts.size()]);
    pending.insert(client.send(Command::boot, &request));
  }
  // The feed is read in a thread of its own and the replies here, each
  // blocking until something comes, so that the bench spends no CPU waiting
  // (it shares the broker's core).
  std::thread reader([&] {
    std::unordered_set<std::string> ready;
    while (static_cast<int>(ready.size()) < count && Clock::now() - start < kDeadline)
      if (auto event = feed.next(std::chrono::milliseconds(100))) {
        pm::LogLine line;
        if (line.ParseFromString(event->payload) && line.line() == "ready") ready.insert(event->topic);
      }
    if (static_cast<int>(ready.size()) == count) figures.first_lines = seconds_since(start);
  });
  std::string error;
  while (!pending.empty()) {
    if (Clock::now() - start > kDeadline) {
      error = "drunc-zmq: boot answers missing after 180 s";
      break;
    }
    auto reply = client.receive(std::chrono::milliseconds(100));
    if (!reply || reply->more || !pending.erase(reply->request_id)) continue;
    if (reply->response.flag() != pm::EXECUTED_SUCCESSFULLY && error.empty())
      error = "boot failed: " + drunc::client::response_text(reply->response);
    if (pending.empty()) figures.running = seconds_since(start);
  }
  reader.join();
  if (!error.empty()) throw std::runtime_error(error);
  if (figures.first_lines == 0) throw std::runtime_error("drunc-zmq: not every first line within 180 s");
  if (before_kill) before_kill();
  const auto kill_start = Clock::now();
  const auto killed = client.terminate();
  figures.kill = seconds_since(kill_start);
  if (killed.values_size() != count) throw std::runtime_error("terminate did not return every process");
}

DruncFigures drunc_in_process(const SshTarget& target, const drunc::broker::Config& config,
                              const SshBootOptions& options) {
  DruncFigures figures;
  const CpuTimes before = cpu_times(target);
  {
    drunc::broker::Broker broker(config);
    drunc::client::Client client(broker.control_endpoint(), std::chrono::seconds(120));
    drunc::client::Subscriber feed(broker.events_endpoint(), {std::string("log/") + kSession + "/"});
    if (!feed.wait_until_live(client, std::chrono::seconds(10))) throw std::runtime_error("the feed did not come live");
    boot_and_terminate(client, feed, target.hosts, options.count, options.log_directory, figures, {});
    figures.cpu.client = broker_threads_cpu() / options.count;
  }
  figures.left = wait_until_clean(target);
  const CpuTimes after = cpu_times(target);
  figures.cpu.server = (after.server - before.server) / options.count;
  figures.logs_missing = check_and_clear_logs(options.log_directory, "drunc-", options.count);
  return figures;
}

bool wants(const SshBootOptions& options, const std::string& method) {
  return std::find(options.methods.begin(), options.methods.end(), method) != options.methods.end();
}

std::string join(const std::vector<int>& values) {
  std::string text;
  for (const int value : values) text += (text.empty() ? "" : " ") + std::to_string(value);
  return text;
}

// drunc-zmq's handshakes in flight per host, so that over all the test hosts
// (one sshd) there are no more than the shell methods have.
int handshakes_per_host(const SshTarget& target, const SshBootOptions& options) {
  return std::max(1, options.startups / static_cast<int>(target.hosts.size()));
}

void become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw std::runtime_error("prctl(PR_SET_CHILD_SUBREAPER) failed");
}

}  // namespace

void run_ssh_boot(const std::string& scenario, const SshTarget& target, const drunc::broker::Config& config,
                  const SshBootOptions& options) {
  become_subreaper();
  prepare_log_directory(target, options.log_directory);
  const double load_before = load_average();
  const std::vector<std::string> shell_methods = {"sequential", "parallel", "control-master"};
  std::vector<double> running, first_lines, kill;
  std::map<std::string, std::vector<double>> boots, kills;
  std::map<std::string, std::vector<int>> retries, masters;
  std::map<std::string, std::vector<double>> client_cpu, server_cpu;  // ms per start, by method
  int logs_missing = 0, left = 0;
  if (wait_until_clean(target) != 0)
    throw std::runtime_error("the test sshd has connections or processes left from before");
  // The test hosts are one sshd, whose MaxStartups counts the handshakes to
  // all of them: drunc-zmq's limit per host is shared out as the shell methods' is.
  drunc::broker::Config drunc_config = config;
  auto& ssh_settings = drunc_config.backends.get<drunc::workers::SshSettings>();
  ssh_settings.max_parallel_handshakes_per_host =
      std::min(ssh_settings.max_parallel_handshakes_per_host, handshakes_per_host(target, options));
  for (int r = 0; r < options.repetitions; ++r) {
    if (wants(options, "drunc")) {
      const auto figures = drunc_in_process(target, drunc_config, options);
      running.push_back(figures.running);
      first_lines.push_back(figures.first_lines);
      kill.push_back(figures.kill);
      client_cpu["drunc"].push_back(figures.cpu.client * 1000);
      server_cpu["drunc"].push_back(figures.cpu.server * 1000);
      logs_missing += figures.logs_missing;
      left = std::max(left, figures.left);
    }
    for (const auto& method : shell_methods) {
      if (!wants(options, method)) continue;
      const auto figures = run_shell_method(method, target, options, options.count);
      boots[method].push_back(figures.boot);
      if (method == "sequential" && options.sequential_kill) kills[method].push_back(figures.kill);
      retries[method].push_back(figures.retries);
      masters[method].push_back(figures.masters);
      client_cpu[method].push_back(figures.cpu.client * 1000);
      server_cpu[method].push_back(figures.cpu.server * 1000);
      logs_missing += figures.logs_missing;
      left = std::max(left, figures.left);
    }
    std::cerr << scenario << ": repetition " << r + 1 << "/" << options.repetitions << " done" << std::endl;
  }
  const std::string n = std::to_string(options.count);
  const std::string lines = "boot " + n + " until each printed its first line";
  if (!running.empty() && !boots["sequential"].empty())
    print_row(scenario, "boot " + n + " until all RUNNING (baseline: " + method_title("sequential") + ")", running,
              boots["sequential"], "s", Better::smaller);
  std::string best;
  for (const auto& method : shell_methods) {
    if (boots[method].empty()) continue;
    if (best.empty() || stats_of(boots[method]).median < stats_of(boots[best]).median) best = method;
    if (!first_lines.empty())
      print_row(scenario, lines + " (baseline: " + method_title(method) + ")", first_lines, boots[method], "s",
                Better::smaller);
  }
  if (!first_lines.empty() && !best.empty())
    print_row(scenario, "**" + lines + ", against the best shell method (" + method_title(best) + ")**", first_lines,
              boots[best], "s", Better::smaller);
  if (!kill.empty()) {
    if (!kills["sequential"].empty()) {
      print_row(scenario, "kill all " + n + " (baseline: SIGQUIT to each client, 0.5 s apart)", kill,
                kills["sequential"], "s", Better::smaller);
    } else {
      const Stats k = stats_of(kill);
      std::printf("| %s | kill all %s | %.4g s (%.4g-%.4g) | - | - |\n", scenario.c_str(), n.c_str(), k.median, k.min,
                  k.max);
    }
  }
  if (first_lines.empty() && !best.empty())  // a shell method alone (process counts, profiles)
    for (const auto& method : shell_methods)
      if (!boots[method].empty()) {
        const Stats b = stats_of(boots[method]);
        std::printf("| %s | %s: %s | - | %.4g s (%.4g-%.4g) | - |\n", scenario.c_str(), lines.c_str(),
                    method_title(method), b.median, b.min, b.max);
      }
  for (const auto& method : shell_methods) {
    if (client_cpu[method].empty() || client_cpu["drunc"].empty()) continue;
    print_row(scenario,
              std::string("CPU per start, client side: the broker threads (baseline: ") + method_title(method) +
                  ": the ssh processes)",
              client_cpu["drunc"], client_cpu[method], "ms", Better::smaller);
    print_row(
        scenario,
        std::string("CPU per start, server side: the sshd and all it starts (baseline: ") + method_title(method) + ")",
        server_cpu["drunc"], server_cpu[method], "ms", Better::smaller);
  }
  for (const auto& method : shell_methods) {
    if (boots[method].empty()) continue;
    std::printf("note: %s: %s: clients (or masters) refused and started again, per repetition: %s", scenario.c_str(),
                method_title(method), join(retries[method]).c_str());
    if (method == "control-master") std::printf("; %d masters", masters[method].front());
    std::printf("\n");
  }
  std::printf("note: %s: drunc-zmq with ssh.max_parallel_handshakes_per_host %d (the test hosts are one sshd)\n",
              scenario.c_str(), ssh_settings.max_parallel_handshakes_per_host);
  std::printf(
      "note: %s: %d processes, %d handshakes at a time for the shell methods, log files in %s; load "
      "average (1 min) %.2f at start, %.2f at end; log files without their ready line: %d; connections "
      "or processes left 30 s after a repetition (most): %d\n",
      scenario.c_str(), options.count, options.startups,
      options.log_directory.empty() ? "(none)" : options.log_directory.c_str(), load_before, load_average(),
      logs_missing, left);
  std::fflush(stdout);
}

void run_ssh_scale(const SshTarget& target, const SshBootOptions& options, const std::string& broker_program) {
  become_subreaper();
  prepare_log_directory(target, options.log_directory);
  const double load_before = load_average();
  if (wait_until_clean(target) != 0)
    throw std::runtime_error("the test sshd has connections or processes left from before");
  const std::string settings =
      "\"log_ring_lines\": 100,\n  \"ssh\": {\"user\": \"" + target.user +
      "\", \"port\": " + std::to_string(target.port) + ", \"key_files\": [\"" + target.state +
      "/client_ed25519\"], \"use_agent\": false, " + "\"known_hosts_files\": [\"" + target.state +
      "/known_hosts\"], \"host_key_policy\": \"strict\", " +
      "\"max_parallel_handshakes_per_host\": " + std::to_string(handshakes_per_host(target, options)) + "}";
  std::vector<double> running, first_lines, kill, rss, threads, idle_rss, baseline;
  std::vector<int> retries;
  int logs_missing = 0, left = 0, masters = 0;
  for (int r = 0; r < options.repetitions; ++r) {
    if (wants(options, "drunc")) {
      DruncFigures figures;
      {
        BrokerProgram broker(broker_program_path(broker_program), settings, "");
        idle_rss.push_back(sample_process(broker.pid()).rss_kib / 1024.0);
        drunc::client::Client client(broker.control_endpoint(), std::chrono::seconds(120));
        drunc::client::Subscriber feed(broker.events_endpoint(), {std::string("log/") + kSession + "/"});
        if (!feed.wait_until_live(client, std::chrono::seconds(10)))
          throw std::runtime_error("the feed did not come live");
        boot_and_terminate(client, feed, target.hosts, options.count, options.log_directory, figures, [&] {
          const auto sample = sample_process(broker.pid());
          figures.rss_mib = sample.rss_kib / 1024.0;
          figures.threads = sample.threads;
        });
      }
      figures.left = wait_until_clean(target);
      figures.logs_missing = check_and_clear_logs(options.log_directory, "drunc-", options.count);
      running.push_back(figures.running);
      first_lines.push_back(figures.first_lines);
      kill.push_back(figures.kill);
      rss.push_back(figures.rss_mib);
      threads.push_back(figures.threads);
      logs_missing += figures.logs_missing;
      left = std::max(left, figures.left);
    }
    if (wants(options, "control-master")) {
      const auto figures = run_shell_method("control-master", target, options, options.count);
      baseline.push_back(figures.boot);
      retries.push_back(figures.retries);
      masters = figures.masters;
      logs_missing += figures.logs_missing;
      left = std::max(left, figures.left);
    }
    std::cerr << "ssh-scale: repetition " << r + 1 << "/" << options.repetitions << " done" << std::endl;
  }
  const std::string n = std::to_string(options.count);
  const std::string hosts = std::to_string(target.hosts.size());
  if (!first_lines.empty() && !baseline.empty()) {
    print_row("ssh-scale",
              "boot " + n + " over " + hosts + " hosts until all RUNNING (baseline: " + method_title("control-master") +
                  ", until each printed its first line)",
              running, baseline, "s", Better::smaller);
    print_row("ssh-scale",
              "**boot " + n + " over " + hosts +
                  " hosts until each printed its first line (baseline: " + method_title("control-master") + ")**",
              first_lines, baseline, "s", Better::smaller);
  }
  if (!kill.empty()) {
    const Stats k = stats_of(kill), m = stats_of(rss), t = stats_of(threads), idle = stats_of(idle_rss);
    std::printf("| ssh-scale | terminate all %s | %.4g s (%.4g-%.4g) | - | - |\n", n.c_str(), k.median, k.min, k.max);
    std::printf(
        "| ssh-scale | drunc-broker RSS with %s processes running (idle at start: %.1f MiB) | %.1f MiB (%.1f-%.1f) | - "
        "| - |\n",
        n.c_str(), idle.median, m.median, m.min, m.max);
    std::printf("| ssh-scale | drunc-broker threads with %s processes running | %.0f (%.0f-%.0f) | - | - |\n",
                n.c_str(), t.median, t.min, t.max);
  }
  if (first_lines.empty() && !baseline.empty()) {
    const Stats b = stats_of(baseline);
    std::printf("| ssh-scale | boot %s: %s | - | %.4g s (%.4g-%.4g) | - |\n", n.c_str(), method_title("control-master"),
                b.median, b.min, b.max);
  }
  std::printf("note: ssh-scale: drunc-zmq with ssh.max_parallel_handshakes_per_host %d (the test hosts are one sshd)\n",
              handshakes_per_host(target, options));
  std::printf(
      "note: ssh-scale: %s processes over %s hosts; ControlMaster: %d masters, refused and opened again per "
      "repetition: %s; load average (1 min) %.2f at start, %.2f at end; log files without their ready line: "
      "%d; connections or processes left 30 s after a repetition (most): %d\n",
      n.c_str(), hosts.c_str(), masters, join(retries).c_str(), load_before, load_average(), logs_missing, left);
  std::fflush(stdout);
}

}  // namespace bench

#include "local_launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "drunc_zmq/internal.pb.h"
#include "line_splitter.hpp"
#include "worker_link.hpp"

extern char** environ;

namespace drunc::workers {
namespace {

namespace pb = drunc_zmq::internal;
using Clock = std::chrono::steady_clock;

// How long output may still flow after the process itself has exited (its
// tee, or a child that kept the pipe open) before the exit is reported anyway.
constexpr auto kOutputDrainGrace = std::chrono::seconds(2);

std::string errno_text(const char* what, int error) { return std::string(what) + ": " + std::strerror(error); }

// Exit status as the shell reports it: the code, or 128+N for signal N.
pb::Exited exit_of(const siginfo_t& info) {
  pb::Exited exited;
  if (info.si_code == CLD_EXITED) {
    exited.set_return_code(info.si_status);
    exited.set_reason("exited with status " + std::to_string(info.si_status));
  } else {
    exited.set_return_code(128 + info.si_status);
    // sigabbrev_np has no name for real-time signals.
    const char* name = ::sigabbrev_np(info.si_status);
    exited.set_reason("ended by signal " + std::to_string(info.si_status) +
                      (name ? std::string(" (") + name + ")" : std::string()));
  }
  return exited;
}

struct Child {
  std::string uuid;
  std::uint32_t generation = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int output_fd = -1;
  LineSplitter splitter;
  std::optional<pb::Exited> exit;                  // set once reaped
  std::optional<Clock::time_point> output_deadline;  // set once reaped with output still open
};

// The launcher's loop and the state it owns; lives on the launcher thread.
class Loop {
 public:
  Loop(zmq::socket_t& socket, int stop_fd);
  ~Loop();
  void run();

 private:
  // Commands from the broker
  void drain_commands();
  void launch(const pb::Launch& launch);
  void kill(const pb::Kill& kill);

  // Children
  void read_output(Child& child);
  void reap(Child& child);
  void close_output(Child& child);
  void report_exit_when_done(Child& child);

  // Timers
  int milliseconds_to_next_timer() const;
  void fire_timers();

  void watch(int fd, Child* child);
  void unwatch(int fd);
  void send(const pb::WorkerReport& report);

  zmq::socket_t& socket_;
  int stop_fd_;
  int epoll_fd_;
  int socket_fd_;
  bool stopping_ = false;
  std::unordered_map<std::string, std::unique_ptr<Child>> children_;  // by uuid
  std::unordered_map<int, Child*> child_of_fd_;                        // pidfds and output pipes
  std::multimap<Clock::time_point, pid_t> sigkill_deadlines_;          // process group ids
};

Loop::Loop(zmq::socket_t& socket, int stop_fd)
    : socket_(socket), stop_fd_(stop_fd), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  socket_fd_ = socket_.get(zmq::sockopt::fd);
  watch(socket_fd_, nullptr);
  watch(stop_fd_, nullptr);
}

Loop::~Loop() {
  for (auto& [uuid, child] : children_) {
    ::kill(-child->pid, SIGKILL);
    if (!child->exit) {
      siginfo_t info{};
      ::waitid(P_PIDFD, child->pidfd, &info, WEXITED);
    }
    if (child->pidfd >= 0) ::close(child->pidfd);
    if (child->output_fd >= 0) ::close(child->output_fd);
  }
  ::close(epoll_fd_);
}

void Loop::run() {
  std::array<epoll_event, 64> events;
  while (!stopping_) {
    // The ZeroMQ fd only signals that the socket's state may have changed:
    // drain every pending command before sleeping again.
    drain_commands();
    const int n = ::epoll_wait(epoll_fd_, events.data(), events.size(), milliseconds_to_next_timer());
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) {
        stopping_ = true;
        continue;
      }
      auto found = child_of_fd_.find(fd);
      if (found == child_of_fd_.end()) continue;  // socket fd, or closed earlier in this batch
      Child& child = *found->second;
      if (fd == child.pidfd)
        reap(child);
      else
        read_output(child);
    }
    fire_timers();
  }
}

// ---- Commands from the broker ----------------------------------------------

void Loop::drain_commands() {
  workers::drain_commands(socket_, "local launcher", [this](const pb::WorkerCommand& command) {
    if (command.has_launch()) launch(command.launch());
    if (command.has_kill()) kill(command.kill());
  });
}

void Loop::launch(const pb::Launch& launch) {
  pb::WorkerReport report;
  report.set_uuid(launch.uuid());
  report.set_generation(launch.generation());
  if (children_.contains(launch.uuid())) {
    report.mutable_start_failed()->set_reason("a process with this uuid is still running on this host");
    send(report);
    return;
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    report.mutable_start_failed()->set_reason(errno_text("pipe2", errno));
    send(report);
    return;
  }
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t no_signals, all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setsigdefault(&attributes, &all_signals);
  // A session of its own: its own process group, for kill to reach its
  // children, and no controlling terminal shared with the broker.
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  const char* argv[] = {"bash", "--noprofile", "--norc", "-c", launch.script().c_str(), nullptr};
  pid_t pid = -1;
  const int error =
      ::posix_spawn(&pid, "/bin/bash", &actions, &attributes, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (error != 0) {
    ::close(pipe_fds[0]);
    report.mutable_start_failed()->set_reason(errno_text("cannot start /bin/bash", error));
    send(report);
    return;
  }

  auto child = std::make_unique<Child>();
  child->uuid = launch.uuid();
  child->generation = launch.generation();
  child->pid = pid;
  child->output_fd = pipe_fds[0];
  child->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (child->pidfd < 0) {
    // Cannot watch it, so cannot manage it: do not leave it running unmanaged.
    const int pidfd_error = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(child->output_fd);
    report.mutable_start_failed()->set_reason(errno_text("pidfd_open", pidfd_error));
    send(report);
    return;
  }
  watch(child->pidfd, child.get());
  watch(child->output_fd, child.get());
  children_.emplace(launch.uuid(), std::move(child));

  report.mutable_started()->set_pid(pid);
  send(report);
}

void Loop::kill(const pb::Kill& kill) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kill.timeout_ms());
  for (const auto& target : kill.targets()) {
    auto found = children_.find(target.uuid());
    if (found == children_.end()) continue;
    Child& child = *found->second;
    if (child.generation != target.generation()) continue;
    // Also when the leader has exited: the rest of its group is still part of it.
    ::kill(-child.pid, SIGQUIT);
    sigkill_deadlines_.emplace(deadline, child.pid);
  }
}

// ---- Children ----------------------------------------------------------------

void Loop::read_output(Child& child) {
  static thread_local std::array<char, 64 * 1024> buffer;
  const ssize_t n = ::read(child.output_fd, buffer.data(), buffer.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  pb::WorkerReport report;
  auto& lines = *report.mutable_output()->mutable_lines();
  std::vector<std::string> cut;
  if (n > 0) {
    child.splitter.feed({buffer.data(), static_cast<std::size_t>(n)}, cut);
  } else {
    child.splitter.finish(cut);
  }
  if (!cut.empty()) {
    for (auto& line : cut) lines.Add(std::move(line));
    report.set_uuid(child.uuid);
    report.set_generation(child.generation);
    send(report);
  }
  if (n <= 0) {
    close_output(child);
    report_exit_when_done(child);
  }
}

void Loop::reap(Child& child) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, child.pidfd, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) return;
  child.exit = exit_of(info);
  unwatch(child.pidfd);
  ::close(child.pidfd);
  child.pidfd = -1;
  if (child.output_fd >= 0) child.output_deadline = Clock::now() + kOutputDrainGrace;
  report_exit_when_done(child);
}

void Loop::close_output(Child& child) {
  unwatch(child.output_fd);
  ::close(child.output_fd);
  child.output_fd = -1;
}

// Exited goes out after the last output line, so that a client that saw the
// exit also finds every line in the broker. The process is its whole group:
// whatever of it outlives the leader and its output (a background child left
// behind) is killed, as systemd does with a service's cgroup.
void Loop::report_exit_when_done(Child& child) {
  if (!child.exit || child.output_fd >= 0) return;
  if (::kill(-child.pid, 0) == 0) {
    spdlog::info("{}: killing what is left of its process group {}", child.uuid, child.pid);
    ::kill(-child.pid, SIGKILL);
  }
  pb::WorkerReport report;
  report.set_uuid(child.uuid);
  report.set_generation(child.generation);
  *report.mutable_exited() = *child.exit;
  send(report);
  children_.erase(child.uuid);
}

// ---- Timers ------------------------------------------------------------------

int Loop::milliseconds_to_next_timer() const {
  std::optional<Clock::time_point> next;
  if (!sigkill_deadlines_.empty()) next = sigkill_deadlines_.begin()->first;
  for (const auto& [uuid, child] : children_)
    if (child->output_deadline && (!next || *child->output_deadline < *next)) next = child->output_deadline;
  if (!next) return -1;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  return wait < 0 ? 0 : static_cast<int>(wait);
}

void Loop::fire_timers() {
  const auto now = Clock::now();
  while (!sigkill_deadlines_.empty() && sigkill_deadlines_.begin()->first <= now) {
    const pid_t group = sigkill_deadlines_.begin()->second;
    sigkill_deadlines_.erase(sigkill_deadlines_.begin());
    // The group may have ended by itself since SIGQUIT; only signal it if it is still there.
    if (::kill(-group, 0) == 0) ::kill(-group, SIGKILL);
  }
  std::vector<Child*> overdue;
  for (auto& [uuid, child] : children_)
    if (child->output_deadline && *child->output_deadline <= now) overdue.push_back(child.get());
  for (Child* child : overdue) {
    std::vector<std::string> last;
    child->splitter.finish(last);
    if (!last.empty()) {
      pb::WorkerReport report;
      report.set_uuid(child->uuid);
      report.set_generation(child->generation);
      for (auto& line : last) report.mutable_output()->add_lines(std::move(line));
      send(report);
    }
    close_output(*child);
    report_exit_when_done(*child);
  }
}

// ---- Plumbing ----------------------------------------------------------------

void Loop::watch(int fd, Child* child) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
  if (child) child_of_fd_[fd] = child;
}

void Loop::unwatch(int fd) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  child_of_fd_.erase(fd);
}

void Loop::send(const pb::WorkerReport& report) {
  send_report(socket_, report);
}

}  // namespace

LocalLauncher::LocalLauncher(zmq::context_t& context, std::string worker_endpoint, std::string routing_id)
    : stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this, &context, worker_endpoint = std::move(worker_endpoint),
                         routing_id = std::move(routing_id)] { run(context, worker_endpoint, routing_id); });
}

LocalLauncher::~LocalLauncher() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
}

void LocalLauncher::run(zmq::context_t& context, const std::string& worker_endpoint,
                        const std::string& routing_id) {
  name_this_thread("drunc-" + routing_id);
  try {
    zmq::socket_t socket = connect_to_broker(context, worker_endpoint, routing_id);
    Loop loop(socket, stop_fd_);
    send_ready(socket);
    loop.run();
  } catch (const std::exception& error) {
    // The loop is gone, and with it every child (its destructor killed them).
    spdlog::critical("local launcher stopped: {}", error.what());
    report_worker_failure(context, worker_endpoint, routing_id, error.what());
  }
}

}  // namespace drunc::workers

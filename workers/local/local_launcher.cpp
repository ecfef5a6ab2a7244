#include "local/local_launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "drunc_zmq/internal.pb.h"
#include "launch_script.hpp"
#include "line_splitter.hpp"
#include "worker_loop.hpp"

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

// A child's pid is also its process group id, and every signal goes to the
// group. So that such an id can never name someone else's group (pids are
// reused), the leader is left a zombie (waitid WNOWAIT) until the Child is
// erased: while it is, no new process can get its pid, hence no new group
// that id. Timers that signal a child (the SIGKILL after a kill's SIGQUIT)
// live in the Child, and go when it goes.
struct Child {
  std::string uuid;
  std::uint32_t generation = 0;
  pid_t pid = -1;
  int pidfd = -1;  // open until the leader is reaped, when the Child is erased
  int output_fd = -1;
  LineSplitter splitter;
  std::optional<pb::Exited> exit;                     // set once the leader has exited
  std::optional<Clock::time_point> output_deadline;   // set once exited with output still open
  std::optional<Clock::time_point> sigkill_deadline;  // set by a kill: SIGKILL then
};

// fd, moved (close-on-exec) above the fds a child is given (kLifelineFd,
// kLogFd), so that handing one to a child never overwrites the other.
int above_child_fds(int fd) {
  if (fd < 0 || fd > kLogFd) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, kLogFd + 1);
  if (moved < 0) throw std::system_error(errno, std::generic_category(), "fcntl F_DUPFD_CLOEXEC");
  ::close(fd);
  return moved;
}

// The lifeline of every child: a pipe whose write end only this process holds
// (O_CLOEXEC: no child inherits it) and whose read end each child gets as
// kLifelineFd. Nobody ever writes to it; when this process dies, however it
// dies (SIGKILL included), the kernel closes the write end, and each child's
// watcher (see launch_script.cpp) reads end of file and kills its process
// group. Alternatives weighed: PR_SET_PDEATHSIG fires when the spawning
// *thread* ends and reaches one process, not its group, so it would need a
// keeper program per child; a pipe needs nothing but bash's `read`, and one
// pipe serves every child.
class Lifeline {
 public:
  Lifeline() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2 (lifeline)");
    fds_[0] = above_child_fds(fds_[0]);
  }
  ~Lifeline() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;
  int read_end() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
};

// Creates the missing directories above path, each 0750 (whatever the umask).
void create_parent_directories(const std::string& path) {
  for (auto slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string directory = path.substr(0, slash);
    if (::mkdir(directory.c_str(), 0750) == 0) ::chmod(directory.c_str(), 0750);
  }
}

// Opens the log file for appending and writes the header, or says why not
// (the reason names the path). The file must be a regular file reached
// without a symbolic link as its last component; a new one is 0640. O_NONBLOCK
// makes a FIFO without reader fail (ENXIO) instead of blocking this thread;
// one with a reader is refused by fstat.
int open_log_file(const LogFile& log, std::string& reason) {
  auto refuse = [&](const std::string& why) {
    reason = "cannot log to " + log.path + ": " + why;
    return -1;
  };
  if (log.path.empty()) return refuse("empty path");
  create_parent_directories(log.path);
  constexpr int kFlags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = ::open(log.path.c_str(), kFlags | O_CREAT | O_EXCL, 0640);
  if (fd >= 0) {
    ::fchmod(fd, 0640);  // the umask may have taken bits away
  } else if (errno == EEXIST) {
    fd = ::open(log.path.c_str(), kFlags);
  }
  if (fd < 0) {
    const int error = errno;
    if (error == ELOOP) return refuse("it is a symbolic link");
    if (error == EISDIR) return refuse("it is a directory");
    if (error == ENXIO) return refuse("it is not a regular file");
    return refuse(std::strerror(error));
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    return refuse("it is not a regular file");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // blocking again, for tee
  try {
    fd = above_child_fds(fd);
  } catch (const std::system_error& error) {
    ::close(fd);
    return refuse(error.what());
  }
  const std::string line = log.header + "\n";
  const ssize_t written = ::write(fd, line.data(), line.size());
  if (written != static_cast<ssize_t>(line.size())) {
    const int error = written < 0 ? errno : ENOSPC;
    ::close(fd);
    return refuse(std::string("cannot write to it: ") + std::strerror(error));
  }
  return fd;
}

// The launcher's loop and the state it owns; lives on the launcher thread.
class Loop : public WorkerLoop {
 public:
  explicit Loop(zmq::socket_t& socket, int stop_fd) : WorkerLoop(socket, stop_fd, "local launcher") {}
  ~Loop() override;

 private:
  // Commands from the broker
  void on_command(const pb::WorkerCommand& command) override;
  void launch(const pb::Launch& launch);
  void kill(const pb::Kill& kill);

  // Children
  void on_ready(int fd, std::uint32_t events) override;
  void read_output(Child& child);
  void notice_exit(Child& child);
  void close_output(Child& child);
  void report_exit_when_done(Child& child);

  // Timers
  int milliseconds_to_wait() const override;
  void after_events() override;

  void watch_child(int fd, Child* child);
  void unwatch_child(int fd);

  Lifeline lifeline_;
  std::unordered_map<std::string, std::unique_ptr<Child>> children_;  // by uuid
  std::unordered_map<int, Child*> child_of_fd_;                       // pidfds and output pipes
};

Loop::~Loop() {
  for (auto& [uuid, child] : children_) {
    ::kill(-child->pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PIDFD, child->pidfd, &info, WEXITED);  // reaps the leader, exited or not yet
    ::close(child->pidfd);
    if (child->output_fd >= 0) ::close(child->output_fd);
  }
}

// ---- Commands from the broker ----------------------------------------------

void Loop::on_command(const pb::WorkerCommand& command) {
  if (command.has_launch()) launch(command.launch());
  if (command.has_kill()) kill(command.kill());
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

  // The script, and the log file, which is opened here rather than by the
  // script: O_NOFOLLOW and fstat are beyond bash, and a log that cannot be
  // written fails the start instead of a process running with its log lost.
  const Incarnation incarnation = incarnation_of(launch);
  std::string script;
  try {
    script = build_launch_script(launch.description(), incarnation);
  } catch (const InvalidDescription& error) {
    report.mutable_start_failed()->set_reason(error.what());
    send(report);
    return;
  }
  int log_fd = -1;
  if (const auto log = log_file_of(launch.description(), incarnation)) {
    std::string reason;
    log_fd = open_log_file(*log, reason);
    if (log_fd < 0) {
      report.mutable_start_failed()->set_reason(reason);
      send(report);
      return;
    }
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    report.mutable_start_failed()->set_reason(errno_text("pipe2", errno));
    if (log_fd >= 0) ::close(log_fd);
    send(report);
    return;
  }
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_adddup2(&actions, lifeline_.read_end(), kLifelineFd);
  if (log_fd >= 0) posix_spawn_file_actions_adddup2(&actions, log_fd, kLogFd);
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

  script.insert(0, launcher_prologue(true, log_fd >= 0));
  const char* argv[] = {"bash", "--noprofile", "--norc", "-c", script.c_str(), nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/bin/bash", &actions, &attributes, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (log_fd >= 0) ::close(log_fd);
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
  watch_child(child->pidfd, child.get());
  watch_child(child->output_fd, child.get());
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
    if (!child.sigkill_deadline || deadline < *child.sigkill_deadline) child.sigkill_deadline = deadline;
  }
}

// ---- Children ----------------------------------------------------------------

void Loop::on_ready(int fd, std::uint32_t) {
  auto found = child_of_fd_.find(fd);
  if (found == child_of_fd_.end()) return;  // closed earlier in this batch
  Child& child = *found->second;
  if (fd == child.pidfd)
    notice_exit(child);
  else
    read_output(child);
}

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

// The leader has exited: its status is read, and it is left a zombie (WNOWAIT)
// so that its pid, the group's id, stays ours until the Child is erased.
void Loop::notice_exit(Child& child) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, child.pidfd, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
  child.exit = exit_of(info);
  unwatch_child(child.pidfd);  // a zombie's pidfd stays readable
  if (child.output_fd >= 0) child.output_deadline = Clock::now() + kOutputDrainGrace;
  report_exit_when_done(child);
}

void Loop::close_output(Child& child) {
  unwatch_child(child.output_fd);
  ::close(child.output_fd);
  child.output_fd = -1;
}

// Exited goes out after the last output line, so that a client that saw the
// exit also finds every line in the broker. The process is its whole group:
// whatever of it outlives the leader and its output (a background child left
// behind) is killed, as systemd does with a service's cgroup.
//
// The SIGKILL goes before the leader is reaped, so the group id cannot be
// anyone else's. Whether anything was left cannot be told (the zombie leader
// itself is a member), so nothing is logged.
void Loop::report_exit_when_done(Child& child) {
  if (!child.exit || child.output_fd >= 0) return;
  ::kill(-child.pid, SIGKILL);
  siginfo_t info{};
  ::waitid(P_PIDFD, child.pidfd, &info, WEXITED);  // the leader, a zombie already: does not block
  ::close(child.pidfd);
  child.pidfd = -1;
  pb::WorkerReport report;
  report.set_uuid(child.uuid);
  report.set_generation(child.generation);
  *report.mutable_exited() = *child.exit;
  send(report);
  children_.erase(child.uuid);
}

// ---- Timers ------------------------------------------------------------------

int Loop::milliseconds_to_wait() const {
  std::optional<Clock::time_point> next;
  auto consider = [&next](const std::optional<Clock::time_point>& deadline) {
    if (deadline && (!next || *deadline < *next)) next = deadline;
  };
  for (const auto& [uuid, child] : children_) {
    consider(child->output_deadline);
    consider(child->sigkill_deadline);
  }
  if (!next) return -1;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  return wait < 0 ? 0 : static_cast<int>(wait);
}

// Timers run after every wait.
void Loop::after_events() {
  const auto now = Clock::now();
  for (auto& [uuid, child] : children_) {
    if (child->sigkill_deadline && *child->sigkill_deadline <= now) {
      child->sigkill_deadline.reset();
      ::kill(-child->pid, SIGKILL);  // the Child exists, so its group id is still its own
    }
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

void Loop::watch_child(int fd, Child* child) {
  watch(fd, EPOLLIN);
  child_of_fd_[fd] = child;
}

void Loop::unwatch_child(int fd) {
  unwatch(fd);
  child_of_fd_.erase(fd);
}

}  // namespace

LocalLauncher::LocalLauncher(zmq::context_t& context, std::string worker_endpoint, std::string routing_id,
                             std::string backend)
    : WorkerThread(context, std::move(worker_endpoint), std::move(routing_id), std::move(backend),
                   [](zmq::socket_t& socket, int stop_fd) { return std::make_unique<Loop>(socket, stop_fd); }) {}

}  // namespace drunc::workers

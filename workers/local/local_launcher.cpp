#include "local/local_launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
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
// on_broker_exit "keep": output comes from a file, which says nothing when
// the last writer is done; after the leader's exit the file is read again
// this much later, for what its tee or its children still wrote.
constexpr auto kFileDrainGrace = std::chrono::milliseconds(100);

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
//
// on_broker_exit "keep" (keep): no lifeline, so the process outlives the
// broker; its output goes to a file (output_path) read here at each inotify
// event, so that a broker started again reads on from where this one
// stopped (offset); its script records its exit status in status_path. An
// adopted child was started by a broker that died: not our child, so its
// exit status comes from status_path, and its group is signalled only
// while its leader is seen alive (nothing holds its pid for us).
struct Child {
  std::string uuid;
  std::uint32_t generation = 0;
  pid_t pid = -1;
  int pidfd = -1;      // open until the leader is reaped, when the Child is erased
  int output_fd = -1;  // the pipe, or keep: the output file, read from
  bool keep = false;
  bool adopted = false;
  int watch = -1;            // keep: its inotify watch
  std::uint64_t offset = 0;  // keep: bytes of the output file read so far
  std::string output_path;
  std::string status_path;
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
// Field 22 of /proc/PID/stat: when the process started, in clock ticks since
// boot. With the pid it names one process for as long as the machine runs.
std::optional<std::uint64_t> start_time_of(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(file, stat)) return std::nullopt;
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The exit status a launch script recorded ("N\n"), if it did.
std::optional<int> recorded_status(const std::string& path) {
  std::ifstream file(path);
  int status = -1;
  if (path.empty() || !(file >> status)) return std::nullopt;
  return status;
}

bool has_exited(int pidfd) {
  pollfd item{pidfd, POLLIN, 0};
  return ::poll(&item, 1, 0) > 0;
}

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
  void adopt(const pb::Adopt& adopt);
  // keep: the output file and status file of a Launch, opened; false with reason if not.
  bool open_keep_files(const pb::Launch& launch, Child& child, int& write_fd, std::string& reason);

  // Children
  void on_ready(int fd, std::uint32_t events) override;
  void read_output(Child& child);
  void read_file(Child& child);
  void on_inotify();
  // Signals the group of child if that group is still its own.
  void signal_group(const Child& child, int signal) const;
  void notice_exit(Child& child);
  void close_output(Child& child);
  void report_exit_when_done(Child& child);

  // Timers
  int milliseconds_to_wait() const override;
  void after_events() override;

  void watch_child(int fd, Child* child);
  void unwatch_child(int fd);

  Lifeline lifeline_;
  int inotify_fd_ = -1;                                               // keep: output files, created at first use
  std::unordered_map<int, Child*> child_of_watch_;                    // inotify watches
  std::unordered_map<std::string, std::unique_ptr<Child>> children_;  // by uuid
  std::unordered_map<int, Child*> child_of_fd_;                       // pidfds and output pipes
};

Loop::~Loop() {
  for (auto& [uuid, child] : children_) {
    if (child->keep) {
      // Stopped by its broker: what it keeps goes on without it (a broker
      // started again re-adopts it). A loop that failed ends it all the same.
      if (!stopping()) signal_group(*child, SIGKILL);
      if (child->output_fd >= 0) ::close(child->output_fd);
      if (child->pidfd >= 0) ::close(child->pidfd);
      continue;
    }
    ::kill(-child->pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PIDFD, child->pidfd, &info, WEXITED);  // reaps the leader, exited or not yet
    ::close(child->pidfd);
    if (child->output_fd >= 0) ::close(child->output_fd);
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

// ---- Commands from the broker ----------------------------------------------

void Loop::on_command(const pb::WorkerCommand& command) {
  if (command.has_launch()) launch(command.launch());
  if (command.has_kill()) kill(command.kill());
  if (command.has_adopt()) adopt(command.adopt());
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

  auto child = std::make_unique<Child>();
  int pipe_fds[2] = {-1, -1};
  if (launch.keep()) {
    std::string reason;
    if (!open_keep_files(launch, *child, pipe_fds[1], reason)) {
      report.mutable_start_failed()->set_reason(reason);
      if (log_fd >= 0) ::close(log_fd);
      send(report);
      return;
    }
    pipe_fds[0] = child->output_fd;
  } else {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      report.mutable_start_failed()->set_reason(errno_text("pipe2", errno));
      if (log_fd >= 0) ::close(log_fd);
      send(report);
      return;
    }
    ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  if (!launch.keep()) posix_spawn_file_actions_adddup2(&actions, lifeline_.read_end(), kLifelineFd);
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

  script.insert(0, launcher_prologue(!launch.keep(), log_fd >= 0, child->status_path));
  const char* argv[] = {"bash", "--noprofile", "--norc", "-c", script.c_str(), nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/bin/bash", &actions, &attributes, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(pipe_fds[1]);
  if (log_fd >= 0) ::close(log_fd);
  if (error != 0) {
    ::close(pipe_fds[0]);
    if (child->watch >= 0) ::inotify_rm_watch(inotify_fd_, child->watch);
    report.mutable_start_failed()->set_reason(errno_text("cannot start /bin/bash", error));
    send(report);
    return;
  }

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
    if (child->watch >= 0) ::inotify_rm_watch(inotify_fd_, child->watch);
    report.mutable_start_failed()->set_reason(errno_text("pidfd_open", pidfd_error));
    send(report);
    return;
  }
  watch_child(child->pidfd, child.get());
  if (child->keep)
    child_of_watch_[child->watch] = child.get();
  else
    watch_child(child->output_fd, child.get());
  auto* started = report.mutable_started();
  started->set_pid(pid);
  // Our child, not reaped: its /proc entry is there.
  started->set_start_time(start_time_of(pid).value_or(0));
  started->set_output_path(child->output_path);
  started->set_status_path(child->status_path);
  children_.emplace(launch.uuid(), std::move(child));
  send(report);
}

bool Loop::open_keep_files(const pb::Launch& launch, Child& child, int& write_fd, std::string& reason) {
  if (inotify_fd_ < 0) {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    watch(inotify_fd_, EPOLLIN);
  }
  const std::string directory = launch.journal_directory() + "/processes";
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    reason = errno_text(("cannot create " + directory).c_str(), errno);
    return false;
  }
  const std::string base = directory + "/" + launch.uuid() + "." + std::to_string(launch.generation());
  child.keep = true;
  child.output_path = base + ".out";
  child.status_path = base + ".status";
  ::unlink(child.status_path.c_str());
  write_fd = ::open(child.output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (write_fd < 0) {
    reason = errno_text(("cannot create " + child.output_path).c_str(), errno);
    return false;
  }
  child.output_fd = ::open(child.output_path.c_str(), O_RDONLY | O_CLOEXEC);
  child.watch = child.output_fd < 0 ? -1 : ::inotify_add_watch(inotify_fd_, child.output_path.c_str(), IN_MODIFY);
  if (child.output_fd < 0 || child.watch < 0) {
    reason = errno_text(("cannot read " + child.output_path).c_str(), errno);
    if (child.output_fd >= 0) ::close(child.output_fd);
    ::close(write_fd);
    return false;
  }
  write_fd = above_child_fds(write_fd);
  return true;
}

// A process a broker that died left running: the same one (pid and start
// time, checked after the pidfd is open, so that the pidfd names it), read
// on from where that broker stopped, watched again. One that ended meanwhile:
// its last output, then its recorded status; not found: lost.
void Loop::adopt(const pb::Adopt& adopt) {
  pb::WorkerReport report;
  report.set_uuid(adopt.uuid());
  report.set_generation(adopt.generation());
  if (children_.contains(adopt.uuid())) {
    report.mutable_adopted();  // already ours: nothing to take back
    send(report);
    return;
  }
  auto child = std::make_unique<Child>();
  child->uuid = adopt.uuid();
  child->generation = adopt.generation();
  child->pid = static_cast<pid_t>(adopt.pid());
  child->keep = true;
  child->adopted = true;
  child->offset = adopt.output_offset();
  child->output_path = adopt.output_path();
  child->status_path = adopt.status_path();
  child->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child->pid, 0));
  const auto start_time = start_time_of(child->pid);
  // A zombie (not reaped by its new parent) is the same process, but has ended.
  const bool same = child->pidfd >= 0 && start_time && *start_time == adopt.start_time() && !has_exited(child->pidfd);
  if (child->pidfd >= 0 && !same) {
    ::close(child->pidfd);
    child->pidfd = -1;
  }
  if (inotify_fd_ < 0) {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
    watch(inotify_fd_, EPOLLIN);
  }
  child->output_fd = ::open(child->output_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (child->output_fd >= 0) ::lseek(child->output_fd, static_cast<off_t>(child->offset), SEEK_SET);
  Child& adopted = *child;
  children_.emplace(adopt.uuid(), std::move(child));
  if (same) {
    if (adopted.output_fd >= 0) {
      adopted.watch = ::inotify_add_watch(inotify_fd_, adopted.output_path.c_str(), IN_MODIFY);
      if (adopted.watch >= 0) child_of_watch_[adopted.watch] = &adopted;
    }
    watch_child(adopted.pidfd, &adopted);
    report.mutable_adopted();
    send(report);
    read_file(adopted);  // what it wrote while no broker read
    return;
  }
  // Ended while the broker was down (or never found): its last output, then its fate.
  pb::Exited exited;
  if (const auto status = recorded_status(adopted.status_path)) {
    exited.set_return_code(*status);
    exited.set_reason("ended while the process manager was down, with status " + std::to_string(*status));
  } else {
    exited.set_return_code(-1);
    exited.set_lost(true);
    const std::string pid = "pid " + std::to_string(adopted.pid);
    exited.set_reason(std::string(!start_time                         ? pid + " is gone"
                                  : *start_time != adopt.start_time() ? pid + " is another process now"
                                                                      : pid + " has ended") +
                      " and no exit status was recorded (ended by SIGKILL?)");
  }
  adopted.exit = exited;
  read_file(adopted);
  std::vector<std::string> last;
  adopted.splitter.finish(last);
  if (!last.empty()) {
    pb::WorkerReport lines;
    lines.set_uuid(adopted.uuid);
    lines.set_generation(adopted.generation);
    for (auto& line : last) lines.mutable_output()->add_lines(std::move(line));
    lines.mutable_output()->set_offset(adopted.offset);
    send(lines);
  }
  close_output(adopted);
  report_exit_when_done(adopted);
}

void Loop::signal_group(const Child& child, int signal) const {
  // An adopted leader is not our child: its pid is the group's only while it runs.
  if (child.adopted && (child.pidfd < 0 || has_exited(child.pidfd))) return;
  ::kill(-child.pid, signal);
}

void Loop::kill(const pb::Kill& kill) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kill.timeout_ms());
  for (const auto& target : kill.targets()) {
    auto found = children_.find(target.uuid());
    if (found == children_.end()) continue;
    Child& child = *found->second;
    if (child.generation != target.generation()) continue;
    // Also when the leader has exited: the rest of its group is still part of it.
    signal_group(child, SIGQUIT);
    if (!child.sigkill_deadline || deadline < *child.sigkill_deadline) child.sigkill_deadline = deadline;
  }
}

// ---- Children ----------------------------------------------------------------

void Loop::on_ready(int fd, std::uint32_t) {
  if (fd == inotify_fd_) return on_inotify();
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

void Loop::on_inotify() {
  alignas(inotify_event) std::array<char, 16 * 1024> buffer;
  std::vector<Child*> changed;
  for (;;) {
    const ssize_t n = ::read(inotify_fd_, buffer.data(), buffer.size());
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
      if (auto found = child_of_watch_.find(event->wd); found != child_of_watch_.end())
        changed.push_back(found->second);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  for (Child* child : changed)
    if (child->output_fd >= 0) read_file(*child);
}

// keep: what the output file holds past what was read, as lines; the offset
// they end at goes with them, for the journal.
void Loop::read_file(Child& child) {
  if (child.output_fd < 0) return;
  static thread_local std::array<char, 64 * 1024> buffer;
  for (;;) {
    const ssize_t n = ::read(child.output_fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    child.offset += static_cast<std::uint64_t>(n);
    std::vector<std::string> cut;
    child.splitter.feed({buffer.data(), static_cast<std::size_t>(n)}, cut);
    if (cut.empty()) continue;
    pb::WorkerReport report;
    report.set_uuid(child.uuid);
    report.set_generation(child.generation);
    auto& lines = *report.mutable_output()->mutable_lines();
    for (auto& line : cut) lines.Add(std::move(line));
    report.mutable_output()->set_offset(child.offset - child.splitter.pending());
    if (!send(report)) return;
  }
}

// The leader has exited: its status is read, and it is left a zombie (WNOWAIT)
// so that its pid, the group's id, stays ours until the Child is erased.
void Loop::notice_exit(Child& child) {
  if (child.adopted) {
    // Not our child: its script recorded its status before it ended.
    pb::Exited exited;
    if (const auto status = recorded_status(child.status_path)) {
      exited.set_return_code(*status);
      exited.set_reason("exited with status " + std::to_string(*status));
    } else {
      exited.set_return_code(-1);
      exited.set_lost(true);
      exited.set_reason("ended without recording its exit status (ended by SIGKILL?)");
    }
    child.exit = exited;
    unwatch_child(child.pidfd);
    child.output_deadline = Clock::now() + kFileDrainGrace;
    return;
  }
  siginfo_t info{};
  if (::waitid(P_PIDFD, child.pidfd, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
  child.exit = exit_of(info);
  unwatch_child(child.pidfd);  // a zombie's pidfd stays readable
  if (child.output_fd >= 0) child.output_deadline = Clock::now() + (child.keep ? kFileDrainGrace : kOutputDrainGrace);
  report_exit_when_done(child);
}

void Loop::close_output(Child& child) {
  if (child.output_fd < 0) return;
  if (child.keep) {
    if (child.watch >= 0) {
      ::inotify_rm_watch(inotify_fd_, child.watch);
      child_of_watch_.erase(child.watch);
      child.watch = -1;
    }
  } else {
    unwatch_child(child.output_fd);
  }
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
//
// keep: the files of the incarnation go once its exit is reported. An
// adopted leader is not ours to reap, nor its group ours to end: its pid
// may be someone else's already.
void Loop::report_exit_when_done(Child& child) {
  if (!child.exit || child.output_fd >= 0) return;
  if (!child.adopted) {
    ::kill(-child.pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PIDFD, child.pidfd, &info, WEXITED);  // the leader, a zombie already: does not block
  }
  if (child.pidfd >= 0) ::close(child.pidfd);
  child.pidfd = -1;
  if (child.keep) {
    ::unlink(child.output_path.c_str());
    ::unlink(child.status_path.c_str());
  }
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
      signal_group(*child, SIGKILL);  // the Child exists, so its group id is still its own (adopted: see there)
    }
  }
  std::vector<Child*> overdue;
  for (auto& [uuid, child] : children_)
    if (child->output_deadline && *child->output_deadline <= now) overdue.push_back(child.get());
  for (Child* child : overdue) {
    if (child->keep) read_file(*child);
    std::vector<std::string> last;
    child->splitter.finish(last);
    if (!last.empty()) {
      pb::WorkerReport report;
      report.set_uuid(child->uuid);
      report.set_generation(child->generation);
      for (auto& line : last) report.mutable_output()->add_lines(std::move(line));
      if (child->keep) report.mutable_output()->set_offset(child->offset);
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

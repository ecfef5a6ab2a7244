// The broker as a program of its own (drunc-broker), for the scenarios that
// watch the broker process from outside: its resident memory, open file
// descriptors, threads and children, from /proc/PID (the soak), or that give
// it a core of its own (fairness). The other scenarios run it in-process.
#pragma once

#include <sys/types.h>

#include <string>

namespace bench {

// Where drunc-broker is: `path` if given, else the build's own
// (bench/drunc-bench -> broker/drunc-broker beside it).
std::string broker_program_path(const std::string& path);

class BrokerProgram {
 public:
  // Writes a configuration file into a fresh temporary directory, with the
  // control and event endpoints ipc:// sockets there, log_level "warn" and
  // the keys in `extra_settings` (JSON members without braces, e.g.
  // "\"kill_timeout_s\": 0.5", may be empty); starts `program` with it
  // (under `taskset -c cpus` when cpus is not empty), its output to
  // DIR/broker.log, and returns once it answers `describe`. Throws with the
  // log's content if it exits first.
  BrokerProgram(const std::string& program, const std::string& extra_settings, const std::string& cpus);
  // SIGTERM (the broker kills what it manages), waits for its exit, removes the directory.
  ~BrokerProgram();
  BrokerProgram(const BrokerProgram&) = delete;
  BrokerProgram& operator=(const BrokerProgram&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& control_endpoint() const { return control_endpoint_; }
  const std::string& events_endpoint() const { return events_endpoint_; }
  const std::string& log_path() const { return log_path_; }
  // SIGTERM and wait; returns the exit status as the shell shows it (128+N for signal N).
  int stop();

 private:
  std::string directory_;
  std::string log_path_;
  std::string control_endpoint_;
  std::string events_endpoint_;
  pid_t pid_ = -1;
};

// What /proc says of one process, and of its children.
struct ProcessSample {
  double rss_kib = 0;  // VmRSS
  int fds = 0;         // entries of /proc/PID/fd
  int threads = 0;     // Threads
  int zombies = 0;     // children in state Z (exited, not reaped)
  int children = 0;    // children alive
};

ProcessSample sample_process(pid_t pid);

// Processes on this machine (any user: the SSH test user's too) whose
// command line is exactly `argv` (the NULs between arguments as spaces).
int count_processes_with_command_line(const std::string& argv);

// The 1-minute load average, from /proc/loadavg.
double load_average();

}  // namespace bench

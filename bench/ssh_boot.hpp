// The SSH boot scenarios (issues 3 and 14): drunc-zmq booting processes on
// the test sshd (tests/fixtures/sshd.sh) beside the shell methods a user
// would otherwise use, each in the same run: one ssh client per process one
// after another (the Python implementation's), ssh clients in parallel at
// the server's MaxStartups limit, and OpenSSH ControlMaster connections
// carrying MaxSessions clients each.
#pragma once

#include <string>
#include <vector>

#include "broker.hpp"

namespace bench {

struct SshTarget {
  std::string state;  // the test sshd's state directory (tests/fixtures/sshd.sh)
  std::string user = "drunc-test";
  int port = 2222;
  std::vector<std::string> hosts;
};

struct SshBootOptions {
  int count = 100;
  int repetitions = 5;
  // Which methods run: any of drunc, sequential, parallel, control-master.
  std::vector<std::string> methods = {"drunc", "sequential", "parallel", "control-master"};
  // The sequential method's own kill (SIGQUIT to each client, 0.5 s apart):
  // about 0.5 s per process, so only when asked.
  bool sequential_kill = false;
  // Handshakes in flight at once on the one test sshd (its MaxStartups
  // starts refusing past 10), and sessions per connection (MaxSessions).
  int startups = 10;
  int sessions = 10;
  // Each process's output is appended to a log file here (on the SSH host:
  // the same machine), by drunc-zmq's remote script and by the shell
  // methods' tee alike; empty: no log file (drunc-zmq's script then only
  // streams it, the shell methods still tee to /dev/null).
  std::string log_directory = "/tmp/drunc-bench-ssh-logs";
};

// ssh-one-host, ssh-four-hosts: boot `count` processes over target.hosts
// from a fresh in-process broker made from `config`, and by each shell
// method, alternating, `repetitions` times; prints a row per method and
// quantity, and notes.
void run_ssh_boot(const std::string& scenario, const SshTarget& target, const drunc::broker::Config& config,
                  const SshBootOptions& options);

// ssh-scale: `count` processes over target.hosts from drunc-broker run as
// a program (its RSS and threads from /proc), until each printed its first
// line on the feed; then terminate; beside ControlMaster for the boot.
void run_ssh_scale(const SshTarget& target, const SshBootOptions& options, const std::string& broker_program);

}  // namespace bench

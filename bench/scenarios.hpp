// The local benchmark scenarios (issue 5); the SSH ones are in drunc_bench.cpp.
#pragma once

#include <string>
#include <vector>

namespace bench {

// Request round trips against a broker with 100 processes, beside a bare
// ZeroMQ ROUTER that answers the same requests with the same bytes. Only the
// rows whose quantity contains one of `only` are measured (all when empty).
// with_curve: broker, echo and clients use CURVE; ps of one process only.
void run_requests(int repetitions, const std::vector<std::string>& only, bool with_curve);

// count local processes booted from one client, against posix_spawn of the
// same processes directly: time to all running, broker memory, ps, terminate.
// Without the baseline (with_baseline false), only drunc-zmq's figures.
void run_scale(int count, int repetitions, bool with_baseline = true);

// `printers` local processes printing `lines_each` lines of `size` bytes as
// fast as they can, to 1 and to 4 subscribers, beside a bare PUB/SUB pair.
// with_curve: broker, PUB and subscribers use CURVE; 1 subscriber only.
void run_feed(int printers, long lines_each, int size, int repetitions, bool with_curve);

// The printer the feed scenario boots (drunc-bench print): `count` lines of
// `size` bytes, each stamped with CLOCK_MONOTONIC, one write per line, at
// `rate` lines per second (0: as fast as it can).
int print_lines(long count, int size, int rate);

struct SoakOptions {
  std::string broker;              // drunc-broker's path; empty: the build's own
  std::string broker_cpus;         // taskset -c list for the broker, or empty
  std::string sshd_state;          // tests/fixtures/sshd.sh's state directory
  std::vector<std::string> hosts;  // SSH hosts; empty: local processes
  long cycles = 10000;             // local cycles
  long ssh_cycles = 2000;          // cycles over SSH
  int concurrency = 50;            // cycles in flight at once
  long sample_every = 0;           // cycles between samples; 0: a twentieth of the run
};

// The soak (issue 11): boot / first line / kill / flush cycles against
// drunc-broker run as a program, sampling its RSS, fds, threads and children
// from /proc whenever it is idle. Prints the table rows and notes; returns
// whether the run met the target (flat after warm-up).
bool run_soak(const SoakOptions& options);

struct FairnessOptions {
  std::string broker;
  std::string broker_cpus;
  int repetitions = 5;
  int samples = 2000;      // paced requests measured per run
  int interval_us = 1000;  // pause between the paced client's requests
};

// The paced client's ps latency while another client floods, against the
// same with no flood (issue 11).
void run_fairness(const FairnessOptions& options);

}  // namespace bench

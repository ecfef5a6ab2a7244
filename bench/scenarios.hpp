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
void run_scale(int count, int repetitions);

// `printers` local processes printing `lines_each` lines of `size` bytes as
// fast as they can, to 1 and to 4 subscribers, beside a bare PUB/SUB pair.
// with_curve: broker, PUB and subscribers use CURVE; 1 subscriber only.
void run_feed(int printers, long lines_each, int size, int repetitions, bool with_curve);

// The printer the feed scenario boots (drunc-bench print): `count` lines of
// `size` bytes, each stamped with CLOCK_MONOTONIC, one write per line, at
// `rate` lines per second (0: as fast as it can).
int print_lines(long count, int size, int rate);

}  // namespace bench

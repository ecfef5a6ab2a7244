// The local benchmark scenarios (issue 5); the SSH ones are in drunc_bench.cpp.
#pragma once

namespace bench {

// Request round trips against a broker with 100 processes, beside a bare
// ZeroMQ ROUTER that answers the same requests with the same bytes.
void run_requests(int repetitions);

// count local processes booted from one client, against posix_spawn of the
// same processes directly: time to all running, broker memory, ps, terminate.
void run_scale(int count, int repetitions);

}  // namespace bench

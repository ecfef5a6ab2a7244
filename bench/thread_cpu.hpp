// CPU time used by named threads of this process, from /proc/self/task: how
// the benchmarks tell the broker thread's cost apart from the clients'.
#pragma once

#include <string_view>

namespace bench {

// Seconds of CPU (user + system) used so far by the live threads of this
// process named `name` (pthread_setname_np). Resolution: one clock tick (10 ms).
double thread_cpu_seconds(std::string_view name);

}  // namespace bench

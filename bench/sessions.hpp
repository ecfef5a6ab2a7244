// What the boot-and-kill scenarios share: booting many processes that say
// "ready", pipelined from one client, and waiting until each has said it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "client.hpp"

namespace bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Boots `count` processes named PREFIX-i (`sh -c 'echo ready; exec sleep 300'`),
// process i on hosts[i % hosts.size()], all requests sent before the first
// answer is awaited; returns when every one is answered RUNNING, or throws.
void boot_ready_processes(drunc::client::Client& client, const std::string& prefix, const std::string& session,
                          const std::vector<std::string>& hosts, int count);

// Boots `count` local `sleep 300` processes app-0 ... in session "bench",
// one after another, for requests to list; returns the last one's uuid.
std::string boot_sleepers(drunc::client::Client& client, int count);

// Returns once each PREFIX-i has printed its line: then it runs its command,
// so a SIGQUIT ends it (a signal arriving while its shells start is ignored by bash).
void wait_until_each_is_ready(drunc::client::Client& client, const std::string& prefix, int count);

}  // namespace bench

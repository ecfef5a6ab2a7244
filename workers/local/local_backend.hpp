// The local backend: processes on this machine, started by one LocalLauncher
// thread (worker "local"). It serves the names of this machine without a
// port; a name with a port means a server to connect to, not this machine.
//
// Configuration: backends.local {"hosts": [...]}, or the top-level
// "local_hosts" as before backends existed (docs/CONFIG.md).
#pragma once

#include <string>
#include <vector>

#include "backend.hpp"

namespace drunc::workers {

struct LocalSettings {
  // Names in allowed_hosts that mean this machine; parsing adds its hostname.
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
};

BackendType local_backend_type();

}  // namespace drunc::workers

// The SSH backend: processes on hosts reached over SSH (libssh2), started by
// ssh.workers SshWorker threads ("ssh-0", "ssh-1", ...). It serves every
// valid host name the backends before it in the table did not take, so it
// comes last: "name", "name:port", "[v6]:port", a bare v6 address. A host
// always goes to the same worker, so that its connections are pooled there.
//
// Configuration: backends.ssh {the ssh keys..., "hosts": {per-host login}},
// or the top-level "ssh" and "hosts" as before backends existed (docs/CONFIG.md).
#pragma once

#include "backend.hpp"
#include "ssh/ssh_settings.hpp"

namespace drunc::workers {

inline constexpr const char* kSshBackend = "ssh";

BackendType ssh_backend_type();

}  // namespace drunc::workers

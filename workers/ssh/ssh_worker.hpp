// SshWorker: the actor that runs processes on remote hosts over SSH, each
// through the launch script it builds from the Launch's description.
//
// Owns its thread, a DEALER socket connected to the broker's worker endpoint
// (routing id given at construction), its libssh2 sessions (never shared with
// another thread) and their channels. Speaks the same messages as
// LocalLauncher (drunc_zmq.internal.WorkerCommand in, WorkerReport out;
// Ready naming the "ssh" backend first); Launch carries user, host and port.
//
// One epoll loop (worker_loop.hpp) serves the command socket and every
// session's socket, all non-blocking: a slow or dead host never delays
// another. Its parts, in ssh/: the pool of connections per (user, host, port)
// (pool.hpp), each connection's setup and keepalives (connection.hpp), each
// process's channel (remote_process.hpp).
//
// Each process runs in one channel through remote_command(): its pid comes
// first on stderr (then Started is reported), signals go as words on the
// channel's stdin, and the remote side kills the process group when the
// channel's stdin ends, so a dropped connection or a dead broker leaves no
// orphan. A process whose connection drops is reported Exited with lost set.
#pragma once

#include <string>

#include <zmq.hpp>

#include "ssh/ssh_settings.hpp"
#include "worker_loop.hpp"

namespace drunc::workers {

class SshWorker : public WorkerThread {
 public:
  SshWorker(zmq::context_t& context, std::string worker_endpoint, std::string routing_id, SshSettings settings);
  // (~WorkerThread) Stops the thread; open sessions are closed, which makes
  // the remote sides kill whatever still runs there.
};

}  // namespace drunc::workers

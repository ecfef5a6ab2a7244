// SshWorker: the actor that runs processes on remote hosts over SSH, each
// through the launch script it builds from the Launch's description.
//
// Owns its thread, a DEALER socket connected to the broker's worker endpoint
// (routing id given at construction), its libssh2 sessions (never shared with
// another thread) and their channels. Speaks the same messages as
// LocalLauncher (drunc_zmq.internal.WorkerCommand in, WorkerReport out;
// Ready naming the "ssh" backend first); Launch carries user, host and port.
//
// One epoll loop serves the command socket and every session's socket, all
// non-blocking: a slow or dead host never delays another. Connections are
// pooled per (user, host, port): every process on a host shares one, until
// the server refuses another channel (OpenSSH's MaxSessions), then another
// connection opens. Handshakes to one host are limited in parallel.
//
// Each process runs in one channel through remote_command(): its pid comes
// first on stderr (then Started is reported), signals go as words on the
// channel's stdin, and the remote side kills the process group when the
// channel's stdin ends, so a dropped connection or a dead broker leaves no
// orphan. A process whose connection drops is reported Exited with lost set.
#pragma once

#include <string>
#include <thread>

#include <zmq.hpp>

#include "backend.hpp"
#include "ssh/ssh_settings.hpp"

namespace drunc::workers {

class SshWorker : public Worker {
 public:
  SshWorker(zmq::context_t& context, std::string worker_endpoint, std::string routing_id, SshSettings settings);
  // Stops the thread; open sessions are closed, which makes the remote sides
  // kill whatever still runs there.
  ~SshWorker() override;

  SshWorker(const SshWorker&) = delete;
  SshWorker& operator=(const SshWorker&) = delete;

 private:
  void run(zmq::context_t& context, const std::string& worker_endpoint, const std::string& routing_id);

  SshSettings settings_;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace drunc::workers

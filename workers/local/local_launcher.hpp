// LocalLauncher: the actor that runs processes on this host, each through
// the launch script it builds from the Launch's description.
//
// Owns its thread, a DEALER socket connected to the broker's worker endpoint
// (routing id given at construction), and every child process it started.
// Threads talk to it only through that socket:
//   in:  drunc_zmq.internal.WorkerCommand (Launch, Kill)
//   out: drunc_zmq.internal.WorkerReport  (Started | StartFailed, OutputLines..., Exited),
//        starting with Ready (naming its backend).
// For each Launch it reports Started or StartFailed, then the output lines,
// then Exited once the process has ended and its output is drained.
//
// Each child runs `bash -c SCRIPT` in a session (and process group) of its
// own; its exit is noticed through a pidfd in the same epoll loop as its
// output pipe and the command socket, so nothing is polled on a timer.
#pragma once

#include <string>

#include <zmq.hpp>

#include "worker_loop.hpp"

namespace drunc::workers {

class LocalLauncher : public WorkerThread {
 public:
  // Starts the thread; it connects to worker_endpoint (bound by the broker)
  // and says it is ready for backend (the local backend's name, or another
  // backend's that reuses this launcher). Destroying it stops the thread;
  // children still running get SIGKILL on their process group.
  LocalLauncher(zmq::context_t& context, std::string worker_endpoint, std::string routing_id, std::string backend);
};

}  // namespace drunc::workers

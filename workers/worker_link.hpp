// The worker side of the link between the broker thread and a launcher
// worker (local or SSH): an inproc DEALER whose routing id names the worker.
// Shared by every worker so that they speak to the broker the same way.
#pragma once

#include <functional>
#include <string>

#include <zmq.hpp>

#include "drunc_zmq/internal.pb.h"

namespace drunc::workers {

// Names the calling thread (at most 15 characters are kept), so that top -H,
// perf and gdb tell the broker's threads apart.
void name_this_thread(const std::string& name);

// A DEALER connected to the broker's worker endpoint. Commands are never
// dropped (no receive limit); reports block the worker when the broker is far
// behind, which is the back-pressure we want.
zmq::socket_t connect_to_broker(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id);

// The first report: an empty one, meaning "ready".
void send_ready(zmq::socket_t& socket);

void send_report(zmq::socket_t& socket, const drunc_zmq::internal::WorkerReport& report);

// A worker whose loop failed says so as its last act, from a fresh socket
// (its own may be what failed): the broker then reports its processes lost
// and answers what waited on it. Waits at most a second for delivery.
void report_worker_failure(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id,
                           const std::string& reason);

// Hands every command already queued to handle, without blocking. The
// socket's fd only signals that its state may have changed: callers drain
// before every wait. A FailForTest command throws, as a failing loop would.
void drain_commands(zmq::socket_t& socket, const std::string& worker,
                    const std::function<void(const drunc_zmq::internal::WorkerCommand&)>& handle);

}  // namespace drunc::workers

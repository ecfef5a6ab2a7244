// The worker side of the link between the broker thread and a launcher
// worker (of any backend): an inproc DEALER whose routing id names the worker.
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
// dropped (no receive limit); reports wait when the broker is far behind,
// which is the back-pressure we want (see send_report).
zmq::socket_t connect_to_broker(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id);

// The first report: Ready, naming the backend the worker serves.
void send_ready(zmq::socket_t& socket, const std::string& backend);

// Sends a report, waiting as long as the pipe to the broker is full.
void send_report(zmq::socket_t& socket, const drunc_zmq::internal::WorkerReport& report);

// Sends a report, waiting while the pipe to the broker is full, but only
// until stop_fd (the worker's stop eventfd) is readable: then the report is
// dropped and false returned, and the worker should stop. Waiting rather than
// dropping after a deadline: a broker that is merely busy must still get
// every Exited; and a worker that waits reads no more child output, so the
// children block on their pipes instead of memory growing. Watching stop_fd
// is what keeps that wait from outliving the broker: when the broker stops
// reading for good (shutdown, or its thread died), the owner's stop ends it.
bool send_report(zmq::socket_t& socket, const drunc_zmq::internal::WorkerReport& report, int stop_fd);

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

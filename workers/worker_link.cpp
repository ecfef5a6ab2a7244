#include "worker_link.hpp"

#include <pthread.h>

#include <chrono>

#include <spdlog/spdlog.h>

namespace drunc::workers {

namespace pb = drunc_zmq::internal;

void name_this_thread(const std::string& name) { ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str()); }

zmq::socket_t connect_to_broker(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::routing_id, routing_id);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  return socket;
}

void send_ready(zmq::socket_t& socket, const std::string& backend) {
  pb::WorkerReport report;
  report.mutable_ready()->set_backend(backend);
  send_report(socket, report);
}

void send_report(zmq::socket_t& socket, const pb::WorkerReport& report) {
  socket.send(zmq::buffer(report.SerializeAsString()), zmq::send_flags::none);
}

bool send_report(zmq::socket_t& socket, const pb::WorkerReport& report, int stop_fd) {
  const std::string bytes = report.SerializeAsString();
  while (!socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLOUT, 0}, {nullptr, stop_fd, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(-1));
    if (items[1].revents & ZMQ_POLLIN) {
      spdlog::warn("a report to the broker was dropped: the worker is stopping and the broker reads no more");
      return false;
    }
  }
  return true;
}

void report_worker_failure(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id,
                           const std::string& reason) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::routing_id, "failed-" + routing_id);
    socket.set(zmq::sockopt::linger, 1000);
    socket.set(zmq::sockopt::sndtimeo, 1000);
    socket.connect(endpoint);
    pb::WorkerReport report;
    report.mutable_worker_failed()->set_worker(routing_id);
    report.mutable_worker_failed()->set_reason(reason);
    socket.send(zmq::buffer(report.SerializeAsString()), zmq::send_flags::none);
  } catch (const std::exception& error) {
    spdlog::critical("{}: could not tell the broker it failed: {}", routing_id, error.what());
  }
}

void drain_commands(zmq::socket_t& socket, const std::string& worker,
                    const std::function<void(const pb::WorkerCommand&)>& handle) {
  while (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) {
    zmq::message_t message;
    if (!socket.recv(message, zmq::recv_flags::dontwait)) return;
    pb::WorkerCommand command;
    if (!command.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
      spdlog::error("{}: unparseable command from the broker ({} bytes)", worker, message.size());
      continue;
    }
    if (command.has_fail_for_test()) throw std::runtime_error("failure injected by a test");
    handle(command);
  }
}

}  // namespace drunc::workers

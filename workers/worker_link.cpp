#include "worker_link.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

namespace drunc::workers {

namespace pb = drunc_zmq::internal;

void name_this_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

zmq::socket_t connect_to_broker(zmq::context_t& context, const std::string& endpoint, const std::string& routing_id) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::routing_id, routing_id);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  return socket;
}

void send_ready(zmq::socket_t& socket) { send_report(socket, pb::WorkerReport()); }

void send_report(zmq::socket_t& socket, const pb::WorkerReport& report) {
  socket.send(zmq::buffer(report.SerializeAsString()), zmq::send_flags::none);
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
    handle(command);
  }
}

}  // namespace drunc::workers

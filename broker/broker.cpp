#include "broker.hpp"

#include <spdlog/spdlog.h>

#include "broker_loop.hpp"
#include "worker_link.hpp"

namespace drunc::broker {

Broker::Broker(Config config, std::function<void(const std::string&)> on_failure)
    : context_(1),
      backends_(workers::create_backends(config.backends)),
      loop_(std::make_unique<BrokerLoop>(context_, std::move(config), backends_)),
      stop_sender_(context_, zmq::socket_type::pair),
      on_failure_(std::move(on_failure)) {
  control_endpoint_ = loop_->control_endpoint();
  events_endpoint_ = loop_->events_endpoint();
  std::map<std::string, std::string> backend_of;  // by worker name (its first routing id)
  for (const auto& [name, backend] : backends_)
    for (const auto& worker : backend->worker_names()) {
      workers_[worker] = {backend.get(), backend->start_worker(context_, kWorkerEndpoint, worker, worker)};
      backend_of[worker] = name;
    }
  loop_->wait_for_workers(backend_of);
  // On the broker thread, after the failed worker's thread has ended: the
  // old object only joins it.
  loop_->set_worker_starter([this](const std::string& worker, const std::string& routing_id) {
    auto found = workers_.find(worker);
    if (found == workers_.end()) throw std::logic_error("no launcher worker is named " + worker);
    found->second.running = found->second.backend->start_worker(context_, kWorkerEndpoint, worker, routing_id);
  });
  stop_sender_.connect(kStopEndpoint);
  thread_ = std::thread([this] {
    workers::name_this_thread("drunc-broker");
    try {
      loop_->run();
    } catch (const std::exception& error) {
      spdlog::critical("broker loop stopped: {}", error.what());
      failed_ = true;
      if (on_failure_) on_failure_(error.what());
    }
  });
}

void Broker::inject_fault_for_test(const std::string& what) {
  stop_sender_.send(zmq::buffer(what), zmq::send_flags::none);
}

void Broker::reload() { stop_sender_.send(zmq::str_buffer("reload"), zmq::send_flags::none); }

Broker::~Broker() {
  stop_sender_.send(zmq::str_buffer("stop"), zmq::send_flags::none);
  thread_.join();
  workers_.clear();
  loop_.reset();
  stop_sender_.close();
}

}  // namespace drunc::broker

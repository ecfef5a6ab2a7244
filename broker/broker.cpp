#include "broker.hpp"

#include <spdlog/spdlog.h>

#include "broker_loop.hpp"
#include "local_launcher.hpp"
#include "ssh_worker.hpp"
#include "worker_link.hpp"

namespace drunc::broker {

Broker::Broker(Config config, std::function<void(const std::string&)> on_failure)
    : context_(1),
      loop_(std::make_unique<BrokerLoop>(context_, std::move(config))),
      stop_sender_(context_, zmq::socket_type::pair),
      on_failure_(std::move(on_failure)) {
  control_endpoint_ = loop_->control_endpoint();
  events_endpoint_ = loop_->events_endpoint();
  local_launcher_ = std::make_unique<workers::LocalLauncher>(context_, kWorkerEndpoint, kLocalWorker);
  std::vector<std::string> workers = {kLocalWorker};
  for (int i = 0; i < loop_->ssh_worker_count(); ++i) {
    workers.push_back(ssh_worker_name(i));
    ssh_workers_.push_back(
        std::make_unique<workers::SshWorker>(context_, kWorkerEndpoint, workers.back(), loop_->ssh_settings()));
  }
  loop_->wait_for_workers(workers);
  // On the broker thread, after the failed worker's thread has ended: the
  // old object only joins it.
  loop_->set_worker_starter([this](const std::string& worker, const std::string& routing_id) {
    if (worker == kLocalWorker) {
      local_launcher_ = std::make_unique<workers::LocalLauncher>(context_, kWorkerEndpoint, routing_id);
      return;
    }
    for (int i = 0; i < static_cast<int>(ssh_workers_.size()); ++i)
      if (worker == ssh_worker_name(i)) {
        ssh_workers_[static_cast<std::size_t>(i)] =
            std::make_unique<workers::SshWorker>(context_, kWorkerEndpoint, routing_id, loop_->ssh_settings());
        return;
      }
    throw std::logic_error("no launcher worker is named " + worker);
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
  ssh_workers_.clear();
  local_launcher_.reset();
  loop_.reset();
  stop_sender_.close();
}

}  // namespace drunc::broker

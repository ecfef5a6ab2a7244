// Broker: the actor that serves the drunc-pm/1 protocol (docs/PROTOCOL.md).
//
// Owns: the broker thread; the client ROUTER, the events PUB and the worker
// ROUTER sockets; the process registry; the backends of config.backends
// (workers/backend.hpp) and their worker threads. The registry
// and every table of requests in flight belong to the broker thread alone:
// other threads reach it only through ZeroMQ messages.
//
// The constructor binds every socket (a bind failure throws ConfigError naming
// the setting), starts the workers and returns once they are ready and the
// thread is serving. The destructor kills every managed process, publishes
// SERVER_SHUTDOWN and joins. Construct and destroy from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "backend.hpp"
#include "config.hpp"

namespace drunc::broker {

class BrokerLoop;

class Broker {
 public:
  // on_failure: called, from the broker thread, if that thread stops on an
  // error (its loop failed, or a launcher worker did): the owner should then
  // destroy the broker (which kills every process it started) and exit non-zero.
  explicit Broker(Config config, std::function<void(const std::string& reason)> on_failure = {});
  ~Broker();

  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Re-reads security.client_certificates (SIGHUP); returns at once. Call it
  // from the thread that constructed the broker.
  void reload();
  // True once the broker thread has stopped on an error.
  bool failed() const { return failed_; }
  // Tests only: "fault" makes the broker loop fail, "fault-worker ID" the worker ID.
  void inject_fault_for_test(const std::string& what);

  // The endpoints as bound: a wildcard port ("tcp://127.0.0.1:*") is resolved.
  const std::string& control_endpoint() const { return control_endpoint_; }
  const std::string& events_endpoint() const { return events_endpoint_; }

 private:
  // A worker thread, and the backend that starts it (again, after a failure).
  struct WorkerThread {
    const workers::Backend* backend = nullptr;
    std::unique_ptr<workers::Worker> running;
  };

  zmq::context_t context_;
  std::vector<workers::ConfiguredBackend> backends_;  // in table order
  std::unique_ptr<BrokerLoop> loop_;
  std::map<std::string, WorkerThread> workers_;  // by worker name
  zmq::socket_t stop_sender_;
  std::string control_endpoint_;
  std::string events_endpoint_;
  std::function<void(const std::string&)> on_failure_;
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

}  // namespace drunc::broker

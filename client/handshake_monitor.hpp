// HandshakeMonitor: turns a refused or failed ZeroMQ handshake of a client
// socket into an exception, so that a client learns "the broker refused this
// key" as soon as the broker says it, instead of waiting out its timeout.
// It reads the socket monitor's handshake events (zmq_socket_monitor).
// Lives on the thread of the socket it watches.
#pragma once

#include <stdexcept>
#include <string>

#include <zmq.hpp>

namespace drunc::client {

// The broker refused this client's key, or the handshake could not succeed
// (wrong server key, a broker that does not use CURVE while we do, or the reverse).
class HandshakeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HandshakeMonitor {
 public:
  // Call before watched connects. address names the broker in messages.
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string address, bool curve);

  zmq::socket_t& socket() { return socket_; }
  // Reads the events waiting; throws HandshakeError on a failed handshake.
  void check();

 private:
  zmq::socket_t socket_;  // PAIR, receives the monitor's events
  std::string address_;
  bool curve_;
  bool succeeded_ = false;  // a handshake succeeded once: later failures are reconnects
};

}  // namespace drunc::client

// HandshakeMonitor: turns a refused or failed ZeroMQ handshake of a client
// socket into an exception, so that a client learns "the broker refused this
// key" as soon as the broker says it, instead of waiting out its timeout.
// Asked to, it does the same for a connection that cannot be made at all
// (nothing listens there, the host name does not resolve): ZeroMQ itself
// would retry quietly for ever. It reads the socket monitor's events
// (zmq_socket_monitor). Lives on the thread of the socket it watches.
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

// The first connection to the broker could not be made; the text says why
// ("connection refused", "cannot resolve host ..."). Only with fail_fast_on_connect.
class ConnectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why a connection to address cannot be made, as a phrase ("connection
// refused: nothing listens there", "cannot resolve host "x": ..."), found by
// resolving the host and trying one plain connection (at most ~0.5 s).
std::string diagnose_connect_failure(const std::string& address);

class HandshakeMonitor {
 public:
  // Call before watched connects. address names the broker in messages.
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string address, bool curve);

  zmq::socket_t& socket() { return socket_; }
  // Reads the events waiting; throws HandshakeError on a failed handshake and,
  // with fail_fast_on_connect, ConnectError on a failed first connection.
  void check();

  // Off by default: a program that waits for a broker to come up (or back)
  // wants ZeroMQ's quiet retries. A one-shot tool like drunc-pm wants to know.
  // Only the first connection counts: once connected, a drop is a reconnect.
  void fail_fast_on_connect(bool enabled) { fail_fast_ = enabled; }

 private:
  zmq::socket_t socket_;  // PAIR, receives the monitor's events
  std::string address_;
  bool curve_;
  bool succeeded_ = false;  // a handshake succeeded once: later failures are reconnects
  bool connected_ = false;  // a connection was made once
  bool fail_fast_ = false;
};

}  // namespace drunc::client

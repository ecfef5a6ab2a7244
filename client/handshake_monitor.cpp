#include "handshake_monitor.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <zmq_addon.hpp>

namespace drunc::client {

HandshakeMonitor::HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string address, bool curve)
    : socket_(context, zmq::socket_type::pair), address_(std::move(address)), curve_(curve) {
  char endpoint[64];
  std::snprintf(endpoint, sizeof endpoint, "inproc://drunc-handshake-%p", static_cast<void*>(this));
  const int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
  if (::zmq_socket_monitor(watched.handle(), endpoint, events) != 0) throw zmq::error_t();
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

void HandshakeMonitor::check() {
  while (true) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    if (frames.empty() || frames[0].size() < 6) continue;
    std::uint16_t event;
    std::uint32_t value;
    std::memcpy(&event, frames[0].data(), sizeof event);
    std::memcpy(&value, frames[0].data<char>() + 2, sizeof value);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
      throw HandshakeError("the broker at " + address_ + " refused this key (ZAP status " + std::to_string(value) +
                           "): it is not among the broker's admitted client certificates");
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      succeeded_ = true;
      continue;
    }
    // A CURVE server that cannot open our HELLO (we used the wrong server
    // key) just hangs up: the client sees the handshake end with no detail.
    // (libzmq 4.3 reports a mechanism mismatch this way too, at times).
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      if (succeeded_) continue;
      throw HandshakeError(curve_ ? "the broker at " + address_ +
                                        " ended the CURVE handshake: the server key given (--server-key) is not "
                                        "this broker's, or it does not use CURVE"
                                  : "the broker at " + address_ +
                                        " ended the handshake: it probably requires CURVE security: give a client "
                                        "certificate and the broker's public key (--certificate and --server-key)");
    }
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) continue;
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
      throw HandshakeError(curve_ ? "the broker at " + address_ +
                                        " does not use CURVE security: connect without a certificate"
                                  : "the broker at " + address_ +
                                        " requires CURVE security: give a client certificate and the broker's "
                                        "public key (--certificate and --server-key)");
    char code[16];
    std::snprintf(code, sizeof code, "0x%08x", value);
    throw HandshakeError("the CURVE handshake with the broker at " + address_ + " failed (protocol error " + code +
                         "): is the server's public key right?");
  }
}

}  // namespace drunc::client

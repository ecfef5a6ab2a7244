// ZapHandler: answers ZeroMQ's authentication requests (ZAP, ZeroMQ RFC 27)
// for the broker's CURVE sockets, from the broker's list of admitted keys.
//
// It runs in the broker thread's loop rather than on a thread of its own: the
// list of admitted keys then has one owner, the broker thread, which also
// checks every request against it and replaces it on SIGHUP, with no lock and
// no moment where the two disagree. A handshake costs one hash lookup, a
// tiny fraction of what the broker does per request.
#pragma once

#include <string>

#include <zmq.hpp>

#include "security.hpp"

namespace drunc::broker {

// The message property (zmq_msg_gets) carrying the client's Z85 public key:
// the broker looks the key up again at each request, so a key removed on
// SIGHUP is refused on connections made before.
inline constexpr const char* kKeyProperty = "X-Drunc-Key";
inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

class ZapHandler {
 public:
  // Binds the ZAP endpoint of context: do it before any CURVE socket binds,
  // or libzmq lets CURVE clients in unchecked.
  explicit ZapHandler(zmq::context_t& context);

  zmq::socket_t& socket() { return socket_; }
  // Answers every request waiting on the socket.
  void answer_requests(const AccessList& admitted);

 private:
  zmq::socket_t socket_;  // REP
};

}  // namespace drunc::broker

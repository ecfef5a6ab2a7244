// Client: the drunc-pm/1 client library (docs/PROTOCOL.md), used by drunc-pm,
// the tests and the benchmarks.
//
// One Client owns one DEALER socket; it is not thread-safe (one thread per
// Client). Many requests may be in flight: send() returns at once with the
// request id, and replies are matched by id, in whatever order they come.
// The typed calls (ps, boot, ...) send one request and wait for its answer,
// keeping aside any reply to other requests for a later wait().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include <google/protobuf/message.h>
#include <zmq.hpp>

#include "drunc_zmq/events.pb.h"
#include "druncschema/process_manager.pb.h"
#include "druncschema/request_response.pb.h"
#include "handshake_monitor.hpp"
#include "wire/envelope.hpp"

namespace drunc::client {

// No reply within the timeout.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The broker answered with an error flag; text is its PlainText reason.
class ResponseError : public std::runtime_error {
 public:
  ResponseError(dunedaq::druncschema::ResponseFlag flag, std::string text);
  dunedaq::druncschema::ResponseFlag flag() const { return flag_; }
  const std::string& text() const { return text_; }

 private:
  dunedaq::druncschema::ResponseFlag flag_;
  std::string text_;
};

// CURVE keys for a broker with security.mode "curve" (docs/PROTOCOL.md,
// "Security"); all empty for a broker without security.
struct CurveKeys {
  std::string public_key;  // the client's, Z85
  std::string secret_key;  // the client's, Z85
  std::string server_key;  // the broker's public key, Z85
  std::string user;        // the "user" in the client certificate's metadata, if any
  bool enabled() const { return !server_key.empty(); }
};

// certificate: the client's secret certificate file (zmq.auth's NAME.key_secret,
// drunc-pm keygen's NAME_secret); server_key: the broker's public
// certificate file, or its public key as 40 Z85 characters. Both empty: no
// security. Throws std::runtime_error naming the file or setting at fault.
CurveKeys load_curve_keys(const std::string& certificate, const std::string& server_key);

// The same from the environment: DRUNC_CERTIFICATE and DRUNC_SERVER_KEY.
CurveKeys curve_keys_from_environment();

struct Reply {
  std::string request_id;
  bool more = false;  // a `more` part of a stream; the stream ends with more == false
  dunedaq::druncschema::Response response;
};

// The PlainText in a response's data, or empty.
std::string response_text(const dunedaq::druncschema::Response& response);

// Where the event feed stood when a ps reply was made (docs/PROTOCOL.md,
// "Joining late"), or nullopt if the response carries none.
std::optional<drunc_zmq::FeedPosition> feed_position(const dunedaq::druncschema::Response& response);

class Client {
 public:
  using Duration = std::chrono::milliseconds;

  // A refused handshake ends any wait with HandshakeError. address must be a
  // valid ZeroMQ endpoint (zmq::error_t otherwise).
  explicit Client(const std::string& address, Duration timeout = std::chrono::seconds(10), CurveKeys keys = {});

  // ---- Asynchronous: send now, collect replies later.
  std::string send(wire::Command command, const google::protobuf::Message* data);
  // The next reply to any request (kept-aside ones first), or nullopt after timeout.
  std::optional<Reply> receive(Duration timeout);
  // The next reply to request_id; throws TimeoutError.
  Reply wait(const std::string& request_id, Duration timeout);

  // ---- Synchronous: one request, its `done` answer; ResponseError on an error flag.
  dunedaq::druncschema::Response call(wire::Command command, const google::protobuf::Message* data);
  dunedaq::druncschema::Description describe();
  dunedaq::druncschema::ProcessInstanceList boot(const dunedaq::druncschema::BootRequest& request);
  dunedaq::druncschema::ProcessInstanceList ps(const dunedaq::druncschema::ProcessQuery& query = {});
  dunedaq::druncschema::ProcessInstanceList kill(const dunedaq::druncschema::ProcessQuery& query);
  dunedaq::druncschema::ProcessInstanceList restart(const dunedaq::druncschema::ProcessQuery& query);
  dunedaq::druncschema::ProcessInstanceList flush(const dunedaq::druncschema::ProcessQuery& query = {});
  dunedaq::druncschema::ProcessInstanceList terminate();
  // Calls on_line for each streamed line, in order; returns when the stream
  // ends, with the topic_sequence the process's next log line will carry
  // (0 if the broker did not say).
  std::uint64_t logs(const dunedaq::druncschema::LogRequest& request,
                     const std::function<void(const dunedaq::druncschema::LogLine&)>& on_line);

  void set_token(dunedaq::druncschema::Token token) { token_ = std::move(token); }
  // Waits end with ConnectError as soon as the first connection fails
  // (refused, host unknown) instead of at the timeout; off by default, so
  // that a client may be made before its broker is up (HandshakeMonitor).
  void fail_fast_on_connect(bool enabled) { monitor_->fail_fast_on_connect(enabled); }
  // The keys this client connects with, for a Subscriber to the same broker.
  const CurveKeys& curve_keys() const { return keys_; }
  Duration timeout() const { return timeout_; }

 private:
  dunedaq::druncschema::ProcessInstanceList call_for_list(wire::Command command, const google::protobuf::Message* data);
  std::optional<Reply> receive_from_socket(Duration timeout);

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  CurveKeys keys_;
  Duration timeout_;
  std::uint64_t next_request_ = 1;
  dunedaq::druncschema::Token token_;
  std::unordered_map<std::string, std::deque<Reply>> kept_aside_;  // replies not yet asked for, by id
};

// One message of the event feed.
struct Event {
  std::string topic;
  std::string payload;  // LogLine, ProcessInstance or BroadcastMessage, by topic kind
  drunc_zmq::EventMeta meta;
};

// Subscriber: a SUB socket on the event feed, filtered by topic prefixes
// ("" for everything). Not thread-safe.
class Subscriber {
 public:
  // A refused handshake ends next() with HandshakeError.
  Subscriber(const std::string& address, const std::vector<std::string>& prefixes, CurveKeys keys = {});
  std::optional<Event> next(std::chrono::milliseconds timeout);

  // Returns once the subscriptions are known to have reached the broker
  // (ZeroMQ applies them a moment after connect; events before that are not
  // delivered): subscribes to the broadcasts too, sends `describe` until one
  // arrives (one socket's subscriptions take effect in order), then
  // unsubscribes from them. Events of the subscribed prefixes that arrive
  // meanwhile are kept for next(). False if no broadcast came within timeout.
  bool wait_until_live(Client& client, std::chrono::milliseconds timeout);
  // As Client::fail_fast_on_connect.
  void fail_fast_on_connect(bool enabled) { monitor_->fail_fast_on_connect(enabled); }

 private:
  std::optional<Event> receive(std::chrono::milliseconds timeout);
  bool subscribed(const std::string& topic) const;

  zmq::context_t context_;
  zmq::socket_t socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  std::vector<std::string> prefixes_;
  std::deque<Event> kept_;  // received while waiting until live
};

}  // namespace drunc::client

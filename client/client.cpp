#include "client.hpp"

#include <array>
#include <filesystem>
#include <random>

#include <zmq_addon.hpp>

#include "druncschema/generic.pb.h"
#include "wire/certificate.hpp"
#include "wire/topic.hpp"

namespace drunc::client {

namespace pm = dunedaq::druncschema;
using wire::Command;

ResponseError::ResponseError(pm::ResponseFlag flag, std::string text)
    : std::runtime_error(pm::ResponseFlag_Name(flag) + (text.empty() ? "" : ": " + text)),
      flag_(flag),
      text_(std::move(text)) {}

std::string response_text(const pm::Response& response) {
  pm::PlainText text;
  if (response.has_data() && response.data().UnpackTo(&text)) return text.text();
  return {};
}

std::optional<drunc_zmq::FeedPosition> feed_position(const pm::Response& response) {
  for (const auto& child : response.children()) {
    drunc_zmq::FeedPosition position;
    if (child.has_data() && child.data().Is<drunc_zmq::FeedPosition>() && child.data().UnpackTo(&position))
      return position;
  }
  return std::nullopt;
}

CurveKeys load_curve_keys(const std::string& certificate, const std::string& server_key) {
  if (certificate.empty() && server_key.empty()) return {};
  if (certificate.empty())
    throw std::runtime_error("a server key was given without a client certificate (--certificate, DRUNC_CERTIFICATE)");
  if (server_key.empty())
    throw std::runtime_error(
        "a client certificate was given without the broker's public key (--server-key, "
        "DRUNC_SERVER_KEY)");
  CurveKeys keys;
  try {
    const auto mine = wire::read_certificate(certificate);
    if (mine.secret_key.empty())
      throw std::runtime_error(certificate +
                               " holds no secret-key: give the secret certificate (NAME.key_secret "
                               "from zmq.auth, NAME_secret from drunc-pm keygen)");
    keys.public_key = mine.public_key;
    keys.secret_key = mine.secret_key;
    if (auto user = mine.metadata.find("user"); user != mine.metadata.end()) keys.user = user->second;
    // A file wins: a 40-character path is also valid Z85.
    const bool is_key_text =
        !std::filesystem::exists(server_key) && server_key.size() == 40 && !wire::z85_decode_key(server_key).empty();
    keys.server_key = is_key_text ? server_key : wire::read_certificate(server_key).public_key;
  } catch (const wire::CertificateError& error) {
    throw std::runtime_error(error.what());
  }
  return keys;
}

CurveKeys curve_keys_from_environment() {
  auto value = [](const char* name) {
    const char* text = std::getenv(name);
    return std::string(text ? text : "");
  };
  return load_curve_keys(value("DRUNC_CERTIFICATE"), value("DRUNC_SERVER_KEY"));
}

namespace {

void apply_curve_keys(zmq::socket_t& socket, const CurveKeys& keys) {
  if (!keys.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, keys.server_key);
  socket.set(zmq::sockopt::curve_publickey, keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

// Waits until socket is readable or timeout passes, reading the monitor's
// events meanwhile: a refused handshake throws HandshakeError.
bool wait_readable(zmq::socket_t& socket, HandshakeMonitor* monitor, std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {monitor ? monitor->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    zmq::poll(items, monitor ? 2 : 1, std::max(left, std::chrono::milliseconds(0)));
    if (monitor && (items[1].revents & ZMQ_POLLIN)) monitor->check();
    if (items[0].revents & ZMQ_POLLIN) return true;
    if (left.count() <= 0) return false;
  }
}

}  // namespace

Client::Client(const std::string& address, Duration timeout, CurveKeys keys)
    : context_(1), socket_(context_, zmq::socket_type::dealer), keys_(std::move(keys)), timeout_(timeout) {
  apply_curve_keys(socket_, keys_);
  monitor_ = std::make_unique<HandshakeMonitor>(context_, socket_, address, keys_.enabled());
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::rcvhwm, 0);  // a long logs stream is never cut
  socket_.set(zmq::sockopt::sndhwm, 0);  // a pipelined session boot is never blocked
  socket_.set(zmq::sockopt::sndtimeo, static_cast<int>(timeout_.count()));
  // A routing id of our own, so that after a reconnect (the broker drops a
  // connection that sends an oversized message) replies still find us.
  std::array<unsigned char, 16> routing_id;
  std::random_device entropy;
  for (auto& byte : routing_id) byte = static_cast<unsigned char>(entropy());
  routing_id[0] |= 0x80;  // ids starting with a zero byte are reserved by ZeroMQ
  socket_.set(zmq::sockopt::routing_id, zmq::const_buffer(routing_id.data(), routing_id.size()));
  socket_.connect(address);
}

std::string Client::send(Command command, const google::protobuf::Message* data) {
  pm::Request request;
  *request.mutable_token() = token_;
  if (data) request.mutable_data()->PackFrom(*data);
  std::string request_id = std::to_string(next_request_++);
  auto frames = wire::encode_request(request_id, wire::command_name(command), request.SerializeAsString());
  if (!zmq::send_multipart(socket_, frames))
    throw TimeoutError("could not send to the broker within " + std::to_string(timeout_.count()) + " ms");
  return request_id;
}

std::optional<Reply> Client::receive_from_socket(Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<zmq::message_t> frames;
    if (zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      std::string error;
      auto envelope = wire::decode_reply(frames, &error);
      if (!envelope) throw std::runtime_error("malformed reply from the broker: " + error);
      Reply reply{std::move(envelope->request_id), envelope->more, {}};
      if (!reply.response.ParseFromString(envelope->body))
        throw std::runtime_error("the broker's reply is not a dunedaq.druncschema.Response");
      return reply;
    }
    const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    wait_readable(socket_, monitor_.get(), left);
  }
}

std::optional<Reply> Client::receive(Duration timeout) {
  for (auto it = kept_aside_.begin(); it != kept_aside_.end(); ++it) {
    Reply reply = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) kept_aside_.erase(it);
    return reply;
  }
  return receive_from_socket(timeout);
}

Reply Client::wait(const std::string& request_id, Duration timeout) {
  auto kept = kept_aside_.find(request_id);
  if (kept != kept_aside_.end()) {
    Reply reply = std::move(kept->second.front());
    kept->second.pop_front();
    if (kept->second.empty()) kept_aside_.erase(kept);
    return reply;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    auto reply = left.count() > 0 ? receive_from_socket(left) : std::nullopt;
    if (!reply) throw TimeoutError("no answer from the broker within " + std::to_string(timeout.count()) + " ms");
    if (reply->request_id == request_id) return std::move(*reply);
    kept_aside_[reply->request_id].push_back(std::move(*reply));
  }
}

pm::Response Client::call(Command command, const google::protobuf::Message* data) {
  const auto id = send(command, data);
  Reply reply = wait(id, timeout_);
  while (reply.more) reply = wait(id, timeout_);  // a unary call has no `more`; skip any
  if (reply.response.flag() != pm::EXECUTED_SUCCESSFULLY)
    throw ResponseError(reply.response.flag(), response_text(reply.response));
  return std::move(reply.response);
}

pm::Description Client::describe() {
  pm::Description description;
  const auto response = call(Command::describe, nullptr);
  if (!response.data().UnpackTo(&description)) throw std::runtime_error("describe did not return a Description");
  return description;
}

pm::ProcessInstanceList Client::call_for_list(Command command, const google::protobuf::Message* data) {
  pm::ProcessInstanceList list;
  const auto response = call(command, data);
  if (!response.data().UnpackTo(&list))
    throw std::runtime_error(std::string(wire::command_name(command)) + " did not return a ProcessInstanceList");
  return list;
}

pm::ProcessInstanceList Client::boot(const pm::BootRequest& request) { return call_for_list(Command::boot, &request); }
pm::ProcessInstanceList Client::ps(const pm::ProcessQuery& query) { return call_for_list(Command::ps, &query); }
pm::ProcessInstanceList Client::kill(const pm::ProcessQuery& query) { return call_for_list(Command::kill, &query); }
pm::ProcessInstanceList Client::restart(const pm::ProcessQuery& query) {
  return call_for_list(Command::restart, &query);
}
pm::ProcessInstanceList Client::flush(const pm::ProcessQuery& query) { return call_for_list(Command::flush, &query); }
pm::ProcessInstanceList Client::terminate() {
  const pm::ProcessQuery everything;
  return call_for_list(Command::terminate, &everything);
}

std::uint64_t Client::logs(const pm::LogRequest& request, const std::function<void(const pm::LogLine&)>& on_line) {
  const auto id = send(Command::logs, &request);
  while (true) {
    Reply reply = wait(id, timeout_);
    if (reply.response.flag() != pm::EXECUTED_SUCCESSFULLY)
      throw ResponseError(reply.response.flag(), response_text(reply.response));
    if (!reply.more) {
      drunc_zmq::LogCursor cursor;
      return reply.response.data().UnpackTo(&cursor) ? cursor.next_topic_sequence() : 0;
    }
    pm::LogLine line;
    if (!reply.response.data().UnpackTo(&line)) throw std::runtime_error("a logs reply did not hold a LogLine");
    on_line(line);
  }
}

Subscriber::Subscriber(const std::string& address, const std::vector<std::string>& prefixes, CurveKeys keys)
    : context_(1), socket_(context_, zmq::socket_type::sub), prefixes_(prefixes) {
  apply_curve_keys(socket_, keys);
  monitor_ = std::make_unique<HandshakeMonitor>(context_, socket_, address, keys.enabled());
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::rcvhwm, 0);
  for (const auto& prefix : prefixes) socket_.set(zmq::sockopt::subscribe, prefix);
  socket_.connect(address);
}

std::optional<Event> Subscriber::next(std::chrono::milliseconds timeout) {
  if (!kept_.empty()) {
    Event event = std::move(kept_.front());
    kept_.pop_front();
    return event;
  }
  return receive(timeout);
}

bool Subscriber::subscribed(const std::string& topic) const {
  for (const auto& prefix : prefixes_)
    if (topic.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

bool Subscriber::wait_until_live(Client& client, std::chrono::milliseconds timeout) {
  const std::string broadcasts(wire::kBroadcastKind);
  socket_.set(zmq::sockopt::subscribe, broadcasts + "/");  // last: it takes effect after the others
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool live = false;
  while (!live && std::chrono::steady_clock::now() < deadline) {
    client.describe();  // its COMMAND_RECEIVED, once the broker sees the subscription
    const auto round_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    while (!live && std::chrono::steady_clock::now() < round_end) {
      auto event = receive(std::chrono::milliseconds(20));
      if (!event) continue;
      live = event->topic.rfind(broadcasts + "/", 0) == 0;
      if (subscribed(event->topic)) kept_.push_back(std::move(*event));
    }
  }
  socket_.set(zmq::sockopt::unsubscribe, broadcasts + "/");
  return live;
}

std::optional<Event> Subscriber::receive(std::chrono::milliseconds timeout) {
  std::vector<zmq::message_t> frames;
  // An event already queued is taken without a poll: a subscriber keeping up
  // with a fast feed would otherwise pay a poll per event.
  auto received = zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait);
  if (!received) {
    if (!wait_readable(socket_, monitor_.get(), timeout)) return std::nullopt;
    received = zmq::recv_multipart(socket_, std::back_inserter(frames));
  }
  // Frames after the third are extensions this client does not know yet: ignored.
  if (!received || frames.size() < 3) throw std::runtime_error("malformed event: expected [topic][payload][EventMeta]");
  Event event{frames[0].to_string(), frames[1].to_string(), {}};
  if (!event.meta.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size())))
    throw std::runtime_error("malformed event: unreadable EventMeta");
  return event;
}

}  // namespace drunc::client

// The control-socket frames of the drunc-pm/1 protocol (docs/PROTOCOL.md).
//
// Client -> broker:  [empty, optional] ["drunc-pm/1"] [request id] [command] [Request bytes]
// Broker -> client:  [empty, if sent]  ["drunc-pm/1"] [request id] ["more"|"done"] [Response bytes]
//
// Pure functions over frames: no sockets, no state, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <zmq.hpp>

namespace drunc::wire {

inline constexpr std::string_view kSignature = "drunc-pm/1";
inline constexpr std::string_view kMore = "more";
inline constexpr std::string_view kDone = "done";
inline constexpr std::size_t kMaxRequestIdSize = 255;

enum class Command { describe, boot, terminate, restart, kill, flush, ps, logs };
inline constexpr Command kAllCommands[] = {Command::describe, Command::boot,  Command::terminate, Command::restart,
                                           Command::kill,     Command::flush, Command::ps,        Command::logs};

std::optional<Command> parse_command(std::string_view name);
std::string_view command_name(Command command);

// Where a reply goes: the ROUTER routing id, whether the client sent the
// empty delimiter frame, and the request id to echo.
struct ReplyAddress {
  std::string routing_id;
  bool empty_delimiter = false;
  std::string request_id;
};

struct RequestEnvelope {
  ReplyAddress from;
  std::string command;    // as sent; may be unknown to the broker
  std::string_view body;  // serialized dunedaq.druncschema.Request, in the frames decoded
};

// A message that is not a valid request. reply_to is set when the request id
// could be read, so that the broker can still answer with an error.
struct MalformedRequest {
  std::string reason;
  std::optional<ReplyAddress> reply_to;
};

// frames: a whole multipart message as received on a ROUTER socket; the
// envelope's body points into them.
std::variant<RequestEnvelope, MalformedRequest> decode_request(std::vector<zmq::message_t>& frames);

// The frames of one reply, routing id first, ready for a ROUTER socket.
std::vector<zmq::message_t> encode_reply(const ReplyAddress& to, bool more, std::string_view response);
std::vector<zmq::message_t> encode_reply(const ReplyAddress& to, bool more, zmq::message_t response);

// The frames of one request as a DEALER sends it (no routing id).
std::vector<zmq::message_t> encode_request(std::string_view request_id, std::string_view command,
                                           std::string_view request, bool empty_delimiter = false);

struct ReplyEnvelope {
  std::string request_id;
  bool more = false;
  std::string body;  // serialized dunedaq.druncschema.Response
};

// frames: a whole multipart message as received on a DEALER socket.
// Returns nullopt and sets *error when the frames are not a drunc-pm/1 reply.
std::optional<ReplyEnvelope> decode_reply(std::vector<zmq::message_t>& frames, std::string* error);

}  // namespace drunc::wire

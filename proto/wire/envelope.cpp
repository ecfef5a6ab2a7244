#include "wire/envelope.hpp"

#include <array>

namespace drunc::wire {
namespace {

constexpr std::array<std::string_view, 8> kCommandNames = {"describe", "boot",  "terminate", "restart",
                                                           "kill",     "flush", "ps",        "logs"};

std::string_view view(const zmq::message_t& frame) { return {frame.data<char>(), frame.size()}; }

bool valid_request_id(const zmq::message_t& frame) { return frame.size() >= 1 && frame.size() <= kMaxRequestIdSize; }

}  // namespace

std::optional<Command> parse_command(std::string_view name) {
  for (std::size_t i = 0; i < kCommandNames.size(); ++i)
    if (kCommandNames[i] == name) return static_cast<Command>(i);
  return std::nullopt;
}

std::string_view command_name(Command command) { return kCommandNames[static_cast<std::size_t>(command)]; }

std::variant<RequestEnvelope, MalformedRequest> decode_request(std::vector<zmq::message_t>& frames) {
  if (frames.size() < 2) return MalformedRequest{"message has no frame after the routing id", std::nullopt};
  ReplyAddress from;
  from.routing_id = std::string(view(frames[0]));
  std::size_t first = 1;
  if (frames[1].size() == 0) {
    from.empty_delimiter = true;
    first = 2;
  }
  const std::size_t count = frames.size() - first;

  std::optional<ReplyAddress> reply_to;
  if (count >= 2 && valid_request_id(frames[first + 1])) {
    from.request_id = std::string(view(frames[first + 1]));
    reply_to = from;
  }
  if (count == 0) return MalformedRequest{"message has only a delimiter frame", std::nullopt};
  if (view(frames[first]) != kSignature)
    return MalformedRequest{"unknown protocol signature (expected \"drunc-pm/1\")", reply_to};
  if (count < 2 || !valid_request_id(frames[first + 1]))
    return MalformedRequest{"request id frame missing or not 1 to 255 bytes", std::nullopt};
  if (count != 4)
    return MalformedRequest{"expected 4 frames [signature][request id][command][Request], got " + std::to_string(count),
                            reply_to};
  return RequestEnvelope{std::move(from), std::string(view(frames[first + 2])), view(frames[first + 3])};
}

std::vector<zmq::message_t> encode_reply(const ReplyAddress& to, bool more, std::string_view response) {
  return encode_reply(to, more, zmq::message_t(response.data(), response.size()));
}

std::vector<zmq::message_t> encode_reply(const ReplyAddress& to, bool more, zmq::message_t response) {
  std::vector<zmq::message_t> frames;
  frames.reserve(6);
  frames.emplace_back(to.routing_id.data(), to.routing_id.size());
  if (to.empty_delimiter) frames.emplace_back();
  frames.emplace_back(kSignature.data(), kSignature.size());
  frames.emplace_back(to.request_id.data(), to.request_id.size());
  const auto flag = more ? kMore : kDone;
  frames.emplace_back(flag.data(), flag.size());
  frames.push_back(std::move(response));
  return frames;
}

std::vector<zmq::message_t> encode_request(std::string_view request_id, std::string_view command,
                                           std::string_view request, bool empty_delimiter) {
  std::vector<zmq::message_t> frames;
  frames.reserve(5);
  if (empty_delimiter) frames.emplace_back();
  frames.emplace_back(kSignature.data(), kSignature.size());
  frames.emplace_back(request_id.data(), request_id.size());
  frames.emplace_back(command.data(), command.size());
  frames.emplace_back(request.data(), request.size());
  return frames;
}

std::optional<ReplyEnvelope> decode_reply(std::vector<zmq::message_t>& frames, std::string* error) {
  std::size_t first = (!frames.empty() && frames[0].size() == 0) ? 1 : 0;
  if (frames.size() - first != 4) {
    *error = "expected 4 reply frames, got " + std::to_string(frames.size() - first);
    return std::nullopt;
  }
  if (view(frames[first]) != kSignature) {
    *error = "unknown protocol signature in reply";
    return std::nullopt;
  }
  const auto flag = view(frames[first + 2]);
  if (flag != kMore && flag != kDone) {
    *error = "reply flag is neither \"more\" nor \"done\"";
    return std::nullopt;
  }
  return ReplyEnvelope{std::string(view(frames[first + 1])), flag == kMore, std::string(view(frames[first + 3]))};
}

}  // namespace drunc::wire

// Fuzz target: the control-socket envelope codec (proto/wire/envelope.*).
//
// Input: a multipart message, frame after frame, each as a length byte and
// that many bytes (a length byte of 255 is followed by two bytes, little
// endian, of the real length); a frame cut short by the end of the input keeps
// what there is. The frames are decoded as a request on the broker's ROUTER
// (first frame: routing id) and as a reply on a client's DEALER.
//
// Invariants: decoding never crashes; a decoded request has a request id of 1
// to 255 bytes, its body is the last frame, and it re-encodes (encode_request)
// to frames that decode to the same request; the reply to it decodes on the
// client side to the same id, flag and body; a malformed request's reply
// address, when there is one, has a valid id; a failed reply decode says why.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "wire/envelope.hpp"

using namespace drunc::wire;

namespace {

std::vector<std::string> split_frames(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> frames;
  std::size_t at = 0;
  while (at < size && frames.size() < 16) {
    std::size_t length = data[at++];
    if (length == 255) {
      length = 0;
      if (at < size) length = data[at++];
      if (at < size) length |= std::size_t{data[at++]} << 8;
    }
    length = std::min(length, size - at);
    frames.emplace_back(reinterpret_cast<const char*>(data + at), length);
    at += length;
  }
  return frames;
}

std::vector<zmq::message_t> messages_of(const std::vector<std::string>& parts) {
  std::vector<zmq::message_t> frames;
  for (const auto& part : parts) frames.emplace_back(part.data(), part.size());
  return frames;
}

std::string_view view(const zmq::message_t& frame) { return {frame.data<char>(), frame.size()}; }

void check_reply_round_trip(const ReplyAddress& to, std::string_view body) {
  for (bool more : {false, true}) {
    auto frames = encode_reply(to, more, body);
    FUZZ_CHECK(frames.size() == (to.empty_delimiter ? 6u : 5u));
    FUZZ_CHECK(view(frames.front()) == to.routing_id);
    frames.erase(frames.begin());  // the ROUTER takes the routing id; the DEALER gets the rest
    std::string error;
    const auto reply = decode_reply(frames, &error);
    FUZZ_CHECK(reply.has_value());
    FUZZ_CHECK(reply->request_id == to.request_id);
    FUZZ_CHECK(reply->more == more);
    FUZZ_CHECK(reply->body == body);
  }
}

void check_request(const std::vector<std::string>& parts) {
  auto frames = messages_of(parts);
  auto decoded = decode_request(frames);
  if (auto* malformed = std::get_if<MalformedRequest>(&decoded)) {
    FUZZ_CHECK(!malformed->reason.empty());
    if (malformed->reply_to) {
      const auto& id = malformed->reply_to->request_id;
      FUZZ_CHECK(!id.empty() && id.size() <= kMaxRequestIdSize);
      FUZZ_CHECK(malformed->reply_to->routing_id == parts.front());
      check_reply_round_trip(*malformed->reply_to, malformed->reason);
    }
    return;
  }
  const auto& request = std::get<RequestEnvelope>(decoded);
  FUZZ_CHECK(request.from.routing_id == parts.front());
  FUZZ_CHECK(!request.from.request_id.empty() && request.from.request_id.size() <= kMaxRequestIdSize);
  FUZZ_CHECK(parts.size() == (request.from.empty_delimiter ? 6u : 5u));
  // The body is the last frame itself, not a copy.
  FUZZ_CHECK(request.body.data() == frames.back().data<char>() && request.body.size() == frames.back().size());
  if (const auto command = parse_command(request.command)) FUZZ_CHECK(command_name(*command) == request.command);

  // What a DEALER sends for this request decodes to the same request.
  auto again = encode_request(request.from.request_id, request.command, request.body, request.from.empty_delimiter);
  again.insert(again.begin(), zmq::message_t(request.from.routing_id.data(), request.from.routing_id.size()));
  auto redecoded = decode_request(again);
  const auto* same = std::get_if<RequestEnvelope>(&redecoded);
  FUZZ_CHECK(same);
  FUZZ_CHECK(same->from.routing_id == request.from.routing_id);
  FUZZ_CHECK(same->from.empty_delimiter == request.from.empty_delimiter);
  FUZZ_CHECK(same->from.request_id == request.from.request_id);
  FUZZ_CHECK(same->command == request.command);
  FUZZ_CHECK(same->body == request.body);

  check_reply_round_trip(request.from, request.body);
}

void check_reply(const std::vector<std::string>& parts) {
  auto frames = messages_of(parts);
  std::string error;
  const auto reply = decode_reply(frames, &error);
  if (!reply) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  FUZZ_CHECK(reply->body == parts.back());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = split_frames(data, size);
  if (!parts.empty()) check_request(parts);
  check_reply(parts);
  return 0;
}

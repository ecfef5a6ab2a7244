// Every frame layout of drunc-pm/1 round-trips through the codec, and every
// malformed layout is recognised, with a reply address when the id is readable.
#include <catch2/catch.hpp>

#include "wire/envelope.hpp"

using namespace drunc::wire;

namespace {

std::vector<zmq::message_t> with_routing_id(std::vector<zmq::message_t> frames, const std::string& routing_id) {
  frames.insert(frames.begin(), zmq::message_t(routing_id.data(), routing_id.size()));
  return frames;
}

std::vector<zmq::message_t> frames_of(const std::vector<std::string>& parts) {
  std::vector<zmq::message_t> frames;
  for (const auto& part : parts) frames.emplace_back(part.data(), part.size());
  return frames;
}

std::vector<zmq::message_t> drop_first(std::vector<zmq::message_t> frames) {
  frames.erase(frames.begin());
  return frames;
}

}  // namespace

TEST_CASE("every command name parses back to itself") {
  for (auto command : kAllCommands) CHECK(parse_command(command_name(command)) == command);
  CHECK_FALSE(parse_command("reboot"));
  CHECK_FALSE(parse_command(""));
  CHECK_FALSE(parse_command("PS"));
}

TEST_CASE("a request round-trips, with and without the empty delimiter") {
  const bool delimiter = GENERATE(false, true);
  const std::string body("\x0a\x00\xff binary", 10);
  auto frames = with_routing_id(encode_request("id-1", "ps", body, delimiter), "peer");
  CHECK(frames.size() == (delimiter ? 6u : 5u));
  auto decoded = decode_request(frames);
  auto* request = std::get_if<RequestEnvelope>(&decoded);
  REQUIRE(request);
  CHECK(request->from.routing_id == "peer");
  CHECK(request->from.empty_delimiter == delimiter);
  CHECK(request->from.request_id == "id-1");
  CHECK(request->command == "ps");
  CHECK(request->body == body);
}

TEST_CASE("a reply round-trips and keeps the client's delimiter choice") {
  const bool delimiter = GENERATE(false, true);
  const bool more = GENERATE(false, true);
  const ReplyAddress to{"peer", delimiter, std::string("\x01\x02", 2)};
  auto frames = encode_reply(to, more, "response bytes");
  CHECK(frames.front().to_string() == "peer");
  CHECK((frames[1].size() == 0) == delimiter);
  auto dealer_frames = drop_first(std::move(frames));
  std::string error;
  auto reply = decode_reply(dealer_frames, &error);
  REQUIRE(reply);
  CHECK(reply->request_id == to.request_id);
  CHECK(reply->more == more);
  CHECK(reply->body == "response bytes");
}

TEST_CASE("request ids of 1 and 255 bytes are accepted") {
  const std::string id(GENERATE(1, 255), 'x');
  auto frames = with_routing_id(encode_request(id, "describe", ""), "peer");
  auto decoded = decode_request(frames);
  REQUIRE(std::holds_alternative<RequestEnvelope>(decoded));
  CHECK(std::get<RequestEnvelope>(decoded).from.request_id == id);
}

TEST_CASE("malformed requests are recognised") {
  SECTION("wrong signature, readable id: answerable") {
    auto frames = frames_of({"peer", "drunc-pm/2", "id", "ps", ""});
    auto decoded = decode_request(frames);
    auto* malformed = std::get_if<MalformedRequest>(&decoded);
    REQUIRE(malformed);
    REQUIRE(malformed->reply_to);
    CHECK(malformed->reply_to->request_id == "id");
    CHECK_THAT(malformed->reason, Catch::Contains("signature"));
  }
  SECTION("too few frames, readable id: answerable") {
    auto frames = frames_of({"peer", "drunc-pm/1", "id", "ps"});
    auto decoded = decode_request(frames);
    auto* malformed = std::get_if<MalformedRequest>(&decoded);
    REQUIRE(malformed);
    CHECK(malformed->reply_to);
    CHECK_THAT(malformed->reason, Catch::Contains("got 3"));
  }
  SECTION("too many frames, with delimiter: answerable, delimiter kept") {
    auto frames = frames_of({"peer", "", "drunc-pm/1", "id", "ps", "", "extra"});
    auto decoded = decode_request(frames);
    auto* malformed = std::get_if<MalformedRequest>(&decoded);
    REQUIRE(malformed);
    REQUIRE(malformed->reply_to);
    CHECK(malformed->reply_to->empty_delimiter);
  }
  SECTION("one garbage frame: not answerable") {
    auto frames = frames_of({"peer", "\xde\xad\xbe\xef"});
    auto decoded = decode_request(frames);
    auto* malformed = std::get_if<MalformedRequest>(&decoded);
    REQUIRE(malformed);
    CHECK_FALSE(malformed->reply_to);
  }
  SECTION("empty request id: not answerable") {
    auto frames = frames_of({"peer", "drunc-pm/1", "", "ps", ""});
    auto decoded = decode_request(frames);
    REQUIRE(std::holds_alternative<MalformedRequest>(decoded));
    CHECK_FALSE(std::get<MalformedRequest>(decoded).reply_to);
  }
  SECTION("request id of 256 bytes: not answerable") {
    auto frames = frames_of({"peer", "drunc-pm/1", std::string(256, 'x'), "ps", ""});
    auto decoded = decode_request(frames);
    REQUIRE(std::holds_alternative<MalformedRequest>(decoded));
    CHECK_FALSE(std::get<MalformedRequest>(decoded).reply_to);
  }
  SECTION("only a routing id, or only a delimiter") {
    auto alone = frames_of({"peer"});
    CHECK(std::holds_alternative<MalformedRequest>(decode_request(alone)));
    auto delimiter_only = frames_of({"peer", ""});
    CHECK(std::holds_alternative<MalformedRequest>(decode_request(delimiter_only)));
  }
}

TEST_CASE("malformed replies are refused with a reason") {
  std::string error;
  auto wrong_flag = frames_of({"drunc-pm/1", "id", "maybe", ""});
  CHECK_FALSE(decode_reply(wrong_flag, &error));
  CHECK_THAT(error, Catch::Contains("more"));
  auto short_reply = frames_of({"drunc-pm/1", "id"});
  CHECK_FALSE(decode_reply(short_reply, &error));
  auto wrong_signature = frames_of({"other/1", "id", "done", ""});
  CHECK_FALSE(decode_reply(wrong_signature, &error));
}

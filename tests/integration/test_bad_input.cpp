// Bad input gets a clear answer (or, with no readable request id, nothing),
// and the broker keeps serving.
#include <thread>

#include <catch2/catch.hpp>

#include <zmq_addon.hpp>

#include "druncschema/generic.pb.h"
#include "fixture.hpp"
#include "ssh_fixture.hpp"  // BrokerProgram, TempDir: nothing here needs the sshd

using namespace test;

namespace {

// A raw DEALER, to send what the client library never would.
class RawClient {
 public:
  explicit RawClient(const std::string& address, zmq::socket_type type = zmq::socket_type::dealer)
      : context_(1), socket_(context_, type) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(address);
  }

  void send(const std::vector<std::string>& parts) {
    std::vector<zmq::message_t> frames;
    for (const auto& part : parts) frames.emplace_back(part.data(), part.size());
    zmq::send_multipart(socket_, frames);
  }

  // The frames of the next reply, or empty after the timeout.
  std::vector<std::string> receive(std::chrono::milliseconds timeout = kPatience) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return {};
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket_, std::back_inserter(frames));
    std::vector<std::string> parts;
    for (const auto& frame : frames) parts.push_back(frame.to_string());
    return parts;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

std::string request_bytes(const google::protobuf::Message* data) {
  pm::Request request;
  if (data) request.mutable_data()->PackFrom(*data);
  return request.SerializeAsString();
}

// Checks a reply's frames and returns its Response.
pm::Response response_of(const std::vector<std::string>& frames, const std::string& request_id) {
  REQUIRE(frames.size() == 4);
  CHECK(frames[0] == "drunc-pm/1");
  CHECK(frames[1] == request_id);
  CHECK(frames[2] == "done");
  pm::Response response;
  REQUIRE(response.ParseFromString(frames[3]));
  CHECK(response.name() == "test-pm");
  return response;
}

void check_still_serving(const TestBroker& broker) {
  auto client = broker.client();
  CHECK(client.describe().type() == "process_manager");
}

}  // namespace

TEST_CASE("a wrong protocol signature with a readable id is answered BAD_REQUEST_FORMAT") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  raw.send({"drunc-pm/9", "r1", "ps", request_bytes(nullptr)});
  const auto response = response_of(raw.receive(), "r1");
  CHECK(response.flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  CHECK_THAT(error_text(response), Catch::Contains("signature"));
  check_still_serving(broker);
}

TEST_CASE("too few or too many frames with a readable id are answered") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  raw.send({"drunc-pm/1", "r1", "ps"});
  CHECK(response_of(raw.receive(), "r1").flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  raw.send({"drunc-pm/1", "r2", "ps", request_bytes(nullptr), "extra"});
  CHECK(response_of(raw.receive(), "r2").flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  check_still_serving(broker);
}

TEST_CASE("garbage with no readable request id is dropped, and service goes on on the same socket") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  raw.send({std::string("\x00\xff\xfe garbage", 11)});
  raw.send({"drunc-pm/1"});
  raw.send({"drunc-pm/1", "", "ps", ""});
  raw.send({"drunc-pm/1", std::string(300, 'x'), "ps", ""});
  // The next well-formed request is answered, and it is the first answer.
  raw.send({"drunc-pm/1", "ok", "describe", request_bytes(nullptr)});
  const auto response = response_of(raw.receive(), "ok");
  CHECK(response.flag() == pm::EXECUTED_SUCCESSFULLY);
}

TEST_CASE("an unparseable Request is BAD_REQUEST_FORMAT: an unknown command NOT_IMPLEMENTED") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  raw.send({"drunc-pm/1", "r1", "ps", "\xff\xff\xff not protobuf"});
  const auto unparseable = response_of(raw.receive(), "r1");
  CHECK(unparseable.flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  CHECK_THAT(error_text(unparseable), Catch::Contains("dunedaq.druncschema.Request"));

  raw.send({"drunc-pm/1", "r2", "reboot", request_bytes(nullptr)});
  const auto unknown = response_of(raw.receive(), "r2");
  CHECK(unknown.flag() == pm::NOT_EXECUTED_NOT_IMPLEMENTED);
  CHECK_THAT(error_text(unknown), Catch::Contains("reboot"));

  raw.send({"drunc-pm/1", "r3", "reboot", "\xff\xff not protobuf"});  // the command is judged first
  CHECK(response_of(raw.receive(), "r3").flag() == pm::NOT_EXECUTED_NOT_IMPLEMENTED);
  check_still_serving(broker);
}

TEST_CASE("Request.data missing or of the wrong Any type names the expected type") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  const pm::LogRequest wrong;
  const struct {
    const char* command;
    const google::protobuf::Message* data;
    const char* expected;
  } cases[] = {{"boot", nullptr, "dunedaq.druncschema.BootRequest"},
               {"kill", &wrong, "dunedaq.druncschema.ProcessQuery"},
               {"ps", &wrong, "dunedaq.druncschema.ProcessQuery"},
               {"restart", nullptr, "dunedaq.druncschema.ProcessQuery"},
               {"flush", &wrong, "dunedaq.druncschema.ProcessQuery"},
               {"logs", nullptr, "dunedaq.druncschema.LogRequest"},
               {"terminate", &wrong, "dunedaq.druncschema.ProcessQuery"}};
  for (const auto& bad : cases) {
    raw.send({"drunc-pm/1", bad.command, bad.command, request_bytes(bad.data)});
    const auto response = response_of(raw.receive(), bad.command);
    CHECK(response.flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
    pm::PlainText text;
    REQUIRE(response.data().UnpackTo(&text));
    CHECK_THAT(text.text(), Catch::Contains(bad.expected));
  }
  // An Any with the right type URL but bytes that do not parse.
  pm::Request corrupt;
  corrupt.mutable_data()->set_type_url("type.googleapis.com/dunedaq.druncschema.ProcessQuery");
  corrupt.mutable_data()->set_value("\xff\xff\xff");
  raw.send({"drunc-pm/1", "corrupt", "ps", corrupt.SerializeAsString()});
  CHECK(response_of(raw.receive(), "corrupt").flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  check_still_serving(broker);
}

TEST_CASE("an Any whose type URL lacks the type.googleapis.com/ prefix is BAD_REQUEST_FORMAT") {
  TestBroker broker;
  RawClient raw(broker.control_endpoint());
  for (const char* url : {"example.org/dunedaq.druncschema.ProcessQuery", "/dunedaq.druncschema.ProcessQuery",
                          "x/y/dunedaq.druncschema.ProcessQuery"}) {
    pm::Request request;
    request.mutable_data()->set_type_url(url);
    raw.send({"drunc-pm/1", "odd-url", "ps", request.SerializeAsString()});
    const auto response = response_of(raw.receive(), "odd-url");
    CHECK(response.flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
    CHECK_THAT(error_text(response), Catch::Contains("type.googleapis.com/dunedaq.druncschema.ProcessQuery"));
  }
  check_still_serving(broker);
}

TEST_CASE("a host whose port is not a plain number, or whose name holds shell words, is not a host") {
  TestBroker broker;
  auto client = broker.client();
  for (const char* host : {"127.0.0.2:2222x", "127.0.0.2:2222; rm -rf /", "127.0.0.2:+2222", "localhost: 1",
                           "[::1]:22x", "[::1]:", "host:0", "host:65536", "a b", "host;id"}) {
    auto request = boot_request("junk-host", "true");
    request.mutable_process_restriction()->clear_allowed_hosts();
    request.mutable_process_restriction()->add_allowed_hosts(host);
    try {
      client.boot(request);
      FAIL("booted on " << host);
    } catch (const drunc::client::ResponseError& error) {
      CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
      CHECK_THAT(error.text(), Catch::Contains("not a valid host name"));
    }
  }
  CHECK(client.ps().values_size() == 0);
}

TEST_CASE("a request over max_message_bytes is answered with an error, logged, and the client served on") {
  ssh::TempDir scratch("drunc-oversized");
  ssh::BrokerProgram program(R"({"name": "test-pm", "control_endpoint": "tcp://127.0.0.1:*",
                                 "events_endpoint": "tcp://127.0.0.1:*", "max_message_bytes": 65536})",
                             scratch);
  RawClient raw(program.control_endpoint());
  raw.send({"drunc-pm/1", "big", "ps", std::string(10 * 1024 * 1024, 'x')});  // 10 MB, the size of the report
  const auto refused = response_of(raw.receive(), "big");
  CHECK(refused.flag() == pm::NOT_EXECUTED_BAD_REQUEST_FORMAT);
  pm::PlainText text;
  REQUIRE(refused.data().UnpackTo(&text));
  CHECK_THAT(text.text(), Catch::StartsWith("ps refused: the request is 104857") &&
                              Catch::EndsWith(" bytes, over max_message_bytes (65536)"));
  // The operator sees it too, with where it came from.
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (program.output().find("over max_message_bytes (65536) (client at 127.0.0.1)") == std::string::npos) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the log, not timing it
  }
  // The same connection is served on.
  raw.send({"drunc-pm/1", "next", "describe", request_bytes(nullptr)});
  CHECK(response_of(raw.receive(), "next").flag() == pm::EXECUTED_SUCCESSFULLY);
}

TEST_CASE("a message far over max_message_bytes is refused by the socket and the broker keeps serving") {
  // Past max_message_bytes + 16 MiB ZeroMQ drops the connection before the broker sees the message.
  TestBroker broker([](auto& config) { config.max_message_bytes = 64 * 1024; });
  RawClient raw(broker.control_endpoint());
  raw.send({"drunc-pm/1", "huge", "ps", std::string(17 * 1024 * 1024, 'x')});
  CHECK(raw.receive(std::chrono::milliseconds(1000)).empty());
  check_still_serving(broker);
}

TEST_CASE("a REQ socket (empty delimiter frame) gets its reply with the delimiter") {
  TestBroker broker;
  RawClient req(broker.control_endpoint(), zmq::socket_type::req);
  req.send({"drunc-pm/1", "q1", "describe", request_bytes(nullptr)});
  const auto response = response_of(req.receive(), "q1");
  CHECK(response.flag() == pm::EXECUTED_SUCCESSFULLY);
}

TEST_CASE("a client that vanishes before its answer does not disturb the broker") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(200); });
  {
    auto client = broker.client();
    boot(client, boot_request("stubborn", "bash", {"-c", "trap '' QUIT; sleep 300; true"}));
    const pm::ProcessQuery everything;
    client.send(drunc::wire::Command::terminate, &everything);
  }  // gone before the answer
  auto client = broker.client();
  const auto killed = client.kill(query_name("stubborn"));  // waits for the same exit
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
}

TEST_CASE(
    "a client that leaves its replies unread is refused past max_unread_reply_bytes, each request still answered") {
  TestBroker broker([](drunc::broker::Config& config) { config.max_unread_reply_bytes = 1 << 20; });
  auto client = broker.client();
  // 20 processes with 4 KB of environment each: every ps reply is over 80 KB.
  for (int i = 0; i < 20; ++i) {
    auto request = boot_request("fat-" + std::to_string(i), "sleep", {"300"});
    (*request.mutable_process_description()->mutable_env())["PAD"] = std::string(4096, 'x');
    boot(client, request);
  }
  RawClient greedy(broker.control_endpoint());
  pm::ProcessQuery all;
  const std::string ps = request_bytes(&all);
  constexpr int kRequests = 2000;  // 160 MB of replies, were they all carried out
  for (int i = 0; i < kRequests; ++i) greedy.send({"drunc-pm/1", "r" + std::to_string(i), "ps", ps});

  // Another client is served meanwhile.
  CHECK(client.ps().values_size() == 20);

  int served = 0, refused = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto response = response_of(greedy.receive(), "r" + std::to_string(i));
    if (response.flag() == pm::EXECUTED_SUCCESSFULLY) {
      ++served;
      continue;
    }
    ++refused;
    CHECK(response.flag() == pm::DRUNC_EXCEPTION_THROWN);
    CHECK_THAT(error_text(response), Catch::Contains("replies unread") && Catch::Contains("max_unread_reply_bytes"));
  }
  CHECK(served > 0);
  CHECK(refused > 0);
  CHECK(client.kill(query_session("test")).values_size() == 20);
}

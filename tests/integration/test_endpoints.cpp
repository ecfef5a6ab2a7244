// Each endpoint's success and error paths, through the client library, on a
// real broker over TCP with real processes.
#include <catch2/catch.hpp>

#include "drunc_zmq/events.pb.h"
#include "fixture.hpp"

using namespace test;
using drunc::client::ResponseError;

TEST_CASE("describe names the broker, its session, every command and the event feed") {
  TestBroker broker([](auto& config) { config.session = "run-12"; });
  auto client = broker.client();
  const auto description = client.describe();
  CHECK(description.type() == "process_manager");
  CHECK(description.name() == "test-pm");
  CHECK(description.session() == "run-12");
  std::vector<std::string> names;
  for (const auto& command : description.commands()) names.push_back(command.name());
  CHECK(names == std::vector<std::string>{"describe", "boot", "terminate", "restart", "kill", "flush", "ps", "logs"});
  CHECK(description.commands(1).data_type(0) == "dunedaq.druncschema.BootRequest");
  CHECK(description.commands(1).return_type() == "dunedaq.druncschema.ProcessInstanceList");
  CHECK(description.commands(7).return_type() == "dunedaq.druncschema.LogLine");
  drunc_zmq::EventFeed feed;
  REQUIRE(description.broadcast().UnpackTo(&feed));
  CHECK(feed.address() == broker.events_endpoint());
  CHECK(feed.protocol() == "drunc-pm-events/1");
}

TEST_CASE("describe without a session says no_session: responses carry name and token") {
  TestBroker broker;
  auto client = broker.client();
  pm::Token token;
  token.set_token("secret-token");
  token.set_user_name("alice");
  client.set_token(token);
  const auto response = client.call(drunc::wire::Command::describe, nullptr);
  CHECK(response.name() == "test-pm");
  CHECK(response.token().token() == "secret-token");
  CHECK(response.token().user_name() == "alice");
  CHECK(response.children_size() == 0);
  CHECK(response.data().type_url() == "type.googleapis.com/dunedaq.druncschema.Description");
  pm::Description description;
  REQUIRE(response.data().UnpackTo(&description));
  CHECK(description.session() == "no_session");
}

TEST_CASE("boot starts a process, reports it RUNNING with a fresh uuid and its host") {
  TestBroker broker;
  auto client = broker.client();
  const auto first = client.boot(boot_request("app", "sleep", {"300"}));
  const auto second = client.boot(boot_request("app", "sleep", {"300"}));
  REQUIRE(first.values_size() == 1);
  const auto& instance = first.values(0);
  CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  CHECK(instance.uuid().uuid().size() == 36);
  CHECK(instance.uuid().uuid() != second.values(0).uuid().uuid());
  CHECK(instance.process_description().metadata().uuid().uuid() == instance.uuid().uuid());
  CHECK(instance.process_description().metadata().hostname() == "localhost");
  CHECK(instance.process_description().metadata().name() == "app");
  CHECK(client.ps().values_size() == 2);
  client.terminate();
}

TEST_CASE("boot falls back to the next allowed host") {
  TestBroker broker;
  auto client = broker.client();
  auto request = boot_request("app", "sleep", {"300"});
  request.mutable_process_restriction()->clear_allowed_hosts();
  request.mutable_process_restriction()->add_allowed_hosts("no-such-host.invalid");
  request.mutable_process_restriction()->add_allowed_hosts("127.0.0.1");
  const auto list = client.boot(request);
  CHECK(list.values(0).process_description().metadata().hostname() == "127.0.0.1");
  client.terminate();
}

TEST_CASE("boot errors are DRUNC_EXCEPTION_THROWN with a reason, and leave nothing registered") {
  TestBroker broker;
  auto client = broker.client();
  auto request = boot_request("app", "sleep", {"300"});
  std::string expected;
  SECTION("no allowed host") {
    request.mutable_process_restriction()->clear_allowed_hosts();
    expected = "allowed_hosts is empty";
  }
  SECTION("allowed_host_types") {
    request.mutable_process_restriction()->add_allowed_host_types("readout");
    expected = "allowed_host_types";
  }
  SECTION("every host refuses") {
    request.mutable_process_restriction()->clear_allowed_hosts();
    request.mutable_process_restriction()->add_allowed_hosts("far-away-1.invalid");
    request.mutable_process_restriction()->add_allowed_hosts("far-away-2.invalid");
    expected = "far-away-2.invalid";
  }
  SECTION("an env name no shell can export") {
    (*request.mutable_process_description()->mutable_env())["BAD-NAME"] = "x";
    expected = "BAD-NAME";
  }
  SECTION("no executable") {
    request.mutable_process_description()->clear_executable_and_arguments();
    expected = "executable_and_arguments is empty";
  }
  try {
    client.boot(request);
    FAIL("boot succeeded");
  } catch (const ResponseError& error) {
    CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
    CHECK_THAT(error.text(), Catch::Contains(expected));
  }
  CHECK(client.ps().values_size() == 0);
}

TEST_CASE("a process that ends at once is booted, then DEAD with its own exit code") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("short", "bash", {"-c", "exit 3"}));
  CHECK(events.wait_for_state(uuid, "exited").return_code() == 3);
  const auto list = client.ps(query_uuid(uuid));
  REQUIRE(list.values_size() == 1);
  CHECK(list.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(list.values(0).return_code() == 3);
  // A command that does not exist is the shell's 127, as on a terminal.
  const auto missing = boot(client, boot_request("missing", "/nonexistent/program"));
  CHECK(events.wait_for_state(missing, "exited").return_code() == 127);
}

TEST_CASE("ps filters by uuid, name regex, user and session, OR-ed: empty lists all") {
  TestBroker broker;
  auto client = broker.client();
  const auto a = boot(client, boot_request("readout-01", "sleep", {"300"}, "s1"));
  const auto b = boot(client, boot_request("readout-02", "sleep", {"300"}, "s2"));
  auto other = boot_request("trigger", "sleep", {"300"}, "s2");
  other.mutable_process_description()->mutable_metadata()->set_user("bob");
  const auto c = boot(client, other);

  auto uuids_of = [](const pm::ProcessInstanceList& list) {
    std::vector<std::string> uuids;
    for (const auto& value : list.values()) uuids.push_back(value.uuid().uuid());
    return uuids;
  };
  CHECK(uuids_of(client.ps()) == std::vector<std::string>{a, b, c});
  CHECK(uuids_of(client.ps(query_uuid(b))) == std::vector<std::string>{b});
  CHECK(uuids_of(client.ps(query_name("^readout"))) == std::vector<std::string>{a, b});
  CHECK(uuids_of(client.ps(query_name("0[2]"))) == std::vector<std::string>{b});
  CHECK(uuids_of(client.ps(query_session("s2"))) == std::vector<std::string>{b, c});
  pm::ProcessQuery by_user;
  by_user.set_user("bob");
  CHECK(uuids_of(client.ps(by_user)) == std::vector<std::string>{c});
  auto either = query_uuid(a);
  either.set_user("bob");
  CHECK(uuids_of(client.ps(either)) == std::vector<std::string>{a, c});
  CHECK(client.ps(query_name("nothing-like-this")).values_size() == 0);
  try {
    client.ps(query_name("broken("));
    FAIL("an invalid regex was accepted");
  } catch (const ResponseError& error) {
    CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
    CHECK_THAT(error.text(), Catch::Contains("broken("));
  }
  client.terminate();
}

TEST_CASE("kill with an empty query kills nothing: terminate kills everything") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"log/"});
  // dash, unlike bash, dies of SIGQUIT (131); each says "ready" once it runs.
  for (const auto* name : {"a", "b"})
    events.wait_for_line(boot(client, boot_request(name, "sh", {"-c", "echo ready; sleep 300"})), "ready");
  CHECK(client.kill(pm::ProcessQuery()).values_size() == 0);
  const auto listed = client.ps();
  for (const auto& instance : listed.values()) CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  const auto terminated = client.terminate();
  REQUIRE(terminated.values_size() == 2);
  for (const auto& instance : terminated.values()) {
    CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
    CHECK(instance.return_code() == 128 + 3);  // SIGQUIT
  }
}

TEST_CASE("killed processes stay listed DEAD until flushed: flush takes only the dead") {
  TestBroker broker;
  auto client = broker.client();
  const auto victim = boot(client, boot_request("victim", "sleep", {"300"}));
  const auto survivor = boot(client, boot_request("survivor", "sleep", {"300"}));
  const auto killed = client.kill(query_uuid(victim));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(client.ps().values_size() == 2);
  const auto flushed = client.flush();
  REQUIRE(flushed.values_size() == 1);
  CHECK(flushed.values(0).uuid().uuid() == victim);
  const auto left = client.ps();
  REQUIRE(left.values_size() == 1);
  CHECK(left.values(0).uuid().uuid() == survivor);
  CHECK(client.flush(query_uuid(survivor)).values_size() == 0);  // alive: not flushed
  client.terminate();
}

TEST_CASE("restart kills a running process and boots it again with the same uuid") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("app", "sleep", {"300"}));
  const auto restarted = client.restart(query_uuid(uuid));
  REQUIRE(restarted.values_size() == 1);
  CHECK(restarted.values(0).uuid().uuid() == uuid);
  CHECK(restarted.values(0).status_code() == pm::ProcessInstance::RUNNING);
  std::uint32_t generation = 0;
  events.wait_for_state(uuid, "killed");
  events.wait_for_state(uuid, "restarted", &generation);
  CHECK(generation == 2);
  CHECK(client.ps().values_size() == 1);
  client.terminate();
}

TEST_CASE("restart boots again a process that died or was killed, but not a flushed one") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("crashes", "bash", {"-c", "echo crashing; exit 9"}));
  events.wait_for_state(uuid, "exited");
  const auto restarted = client.restart(query_uuid(uuid));
  CHECK(restarted.values(0).uuid().uuid() == uuid);
  std::uint32_t generation = 0;
  CHECK(events.wait_for_state(uuid, "exited", &generation).return_code() == 9);
  CHECK(generation == 2);
  client.flush();
  try {
    client.restart(query_uuid(uuid));
    FAIL("a flushed process was restarted");
  } catch (const ResponseError& error) {
    CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
    CHECK_THAT(error.text(), Catch::Contains("matches 0"));
  }
}

TEST_CASE("restart and logs need exactly one match") {
  TestBroker broker;
  auto client = broker.client();
  boot(client, boot_request("twin-1", "sleep", {"300"}));
  boot(client, boot_request("twin-2", "sleep", {"300"}));
  for (auto command : {drunc::wire::Command::restart, drunc::wire::Command::logs}) {
    const auto query = query_name("twin");
    pm::LogRequest log_request;
    *log_request.mutable_query() = query;
    const google::protobuf::Message* data =
        command == drunc::wire::Command::logs ? static_cast<const google::protobuf::Message*>(&log_request) : &query;
    try {
      client.call(command, data);
      FAIL("a query matching two processes was accepted");
    } catch (const ResponseError& error) {
      CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
      CHECK_THAT(error.text(), Catch::Contains("exactly one") && Catch::Contains("matches 2"));
    }
  }
  const auto listed = client.ps();
  for (const auto& instance : listed.values()) CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  client.terminate();
}

TEST_CASE("logs streams the last how_far lines in order: 0 means 100: lines outlive the process") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("counter", "seq", {"1", "150"}));
  events.wait_for_state(uuid, "exited");
  const auto last_three = log_lines(client, uuid, 3);
  CHECK(last_three == std::vector<std::string>{"148", "149", "150"});
  const auto hundred = log_lines(client, uuid, 0);
  REQUIRE(hundred.size() == 100);
  CHECK(hundred.front() == "51");
  CHECK(hundred.back() == "150");
  CHECK(log_lines(client, uuid, 1000).size() == 150);
}

TEST_CASE("the log ring keeps the configured number of lines") {
  TestBroker broker([](auto& config) { config.log_ring_lines = 10; });
  auto client = broker.client();
  Events events(broker, {"state/"});
  const auto uuid = boot(client, boot_request("counter", "seq", {"1", "50"}));
  events.wait_for_state(uuid, "exited");
  const auto lines = log_lines(client, uuid, 1000);
  REQUIRE(lines.size() == 10);
  CHECK(lines.front() == "41");
}

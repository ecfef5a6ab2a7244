// The registry's state machine: each transition, and the ones it refuses.
#include <catch2/catch.hpp>

#include "druncschema/generic.pb.h"
#include "feed_position.hpp"
#include "registry.hpp"

using namespace drunc::broker;
namespace pm = dunedaq::druncschema;

namespace {

pm::BootRequest boot_request(const std::string& name, const std::string& session = "s") {
  pm::BootRequest boot;
  boot.mutable_process_description()->mutable_metadata()->set_name(name);
  boot.mutable_process_description()->mutable_metadata()->set_session(session);
  boot.mutable_process_restriction()->add_allowed_hosts("localhost");
  return boot;
}

}  // namespace

TEST_CASE("a booted process is running, with its uuid and host in the metadata") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a"), "localhost", "local", 42);
  CHECK(record.state == ProcessState::running);
  CHECK(record.generation == 1);
  const auto instance = record.instance();
  CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  CHECK(instance.uuid().uuid() == "u1");
  CHECK(instance.process_description().metadata().uuid().uuid() == "u1");
  CHECK(instance.process_description().metadata().hostname() == "localhost");
  CHECK(instance.process_restriction().allowed_hosts(0) == "localhost");
  CHECK_THROWS_AS(registry.add_booted("u1", boot_request("a"), "localhost", "local", 43), std::logic_error);
}

TEST_CASE("running -> exited keeps the code: stopping -> killed") {
  Registry registry(10);
  auto& exits = registry.add_booted("u1", boot_request("a"), "h", "w", 1);
  CHECK(exits.on_exited(3) == "exited");
  CHECK(exits.state == ProcessState::exited);
  CHECK(exits.instance().status_code() == pm::ProcessInstance::DEAD);
  CHECK(exits.instance().return_code() == 3);

  auto& killed = registry.add_booted("u2", boot_request("b"), "h", "w", 2);
  killed.on_kill_sent();
  CHECK(killed.state == ProcessState::stopping);
  CHECK(killed.instance().status_code() == pm::ProcessInstance::RUNNING);
  CHECK(killed.on_exited(131) == "killed");
  CHECK(killed.state == ProcessState::killed);
  CHECK(killed.return_code == 131);
}

TEST_CASE("restart makes a new generation of the same uuid, on the host it started on") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a"), "h1", "w", 1);
  CHECK_THROWS_AS(record.on_restarted(2, 5, "h2"), std::logic_error);  // still alive
  record.on_exited(1);
  CHECK(record.on_restarted(2, 5, "h2") == "restarted");
  CHECK(record.state == ProcessState::running);
  CHECK(record.generation == 2);
  CHECK(record.return_code == 0);
  CHECK(record.instance().uuid().uuid() == "u1");
  CHECK(record.metadata().hostname() == "h2");
}

TEST_CASE("transitions from the wrong state are refused") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a"), "h", "w", 1);
  record.on_exited(0);
  CHECK_THROWS_AS(record.on_exited(0), std::logic_error);
  CHECK_THROWS_AS(record.on_kill_sent(), std::logic_error);
  auto& alive = registry.add_booted("u2", boot_request("b"), "h", "w", 2);
  CHECK_THROWS_AS(registry.remove("u2"), std::logic_error);
  alive.on_kill_sent();
  CHECK_THROWS_AS(alive.on_kill_sent(), std::logic_error);
}

TEST_CASE("flush removes dead records: the others keep their boot order") {
  Registry registry(10);
  for (const auto* uuid : {"u1", "u2", "u3"}) registry.add_booted(uuid, boot_request(uuid), "h", "w", 1);
  registry.find("u2")->on_exited(0);
  registry.remove("u2");
  CHECK(registry.find("u2") == nullptr);
  const auto all = registry.all();
  REQUIRE(all.size() == 2);
  CHECK(all[0]->uuid == "u1");
  CHECK(all[1]->uuid == "u3");
}

TEST_CASE("an empty query matches all or nothing, as the caller says") {
  Registry registry(10);
  registry.add_booted("u1", boot_request("a", "s1"), "h", "w", 1);
  registry.add_booted("u2", boot_request("b", "s2"), "h", "w", 1);
  CompiledQuery empty{pm::ProcessQuery()};
  CHECK(registry.match(empty, true).size() == 2);
  CHECK(registry.match(empty, false).empty());
  pm::ProcessQuery by_session;
  by_session.set_session("s2");
  const auto matched = registry.match(CompiledQuery(by_session), false);
  REQUIRE(matched.size() == 1);
  CHECK(matched[0]->uuid == "u2");
}

TEST_CASE("the log ring keeps the last lines, oldest first") {
  LogRing ring(3);
  for (const auto* line : {"1", "2", "3", "4", "5"}) ring.add(line);
  CHECK(ring.size() == 3);
  auto last_two = ring.last(2);
  REQUIRE(last_two.size() == 2);
  CHECK(*last_two[0] == "4");
  CHECK(*last_two[1] == "5");
  CHECK(ring.last(100).size() == 3);
  CHECK(*ring.last(100).front() == "3");
}

TEST_CASE("a process whose worker lost track of it is lost, DEAD, and can be restarted") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a"), "far", "ssh-0", 1);
  CHECK(record.on_exited(-1, true) == "lost");
  CHECK(record.state == ProcessState::lost);
  CHECK(record.instance().status_code() == pm::ProcessInstance::DEAD);
  CHECK(record.on_restarted(2, 7, "far") == "restarted");
}

TEST_CASE("a uuid query answers from the index, in boot order, each process once") {
  Registry registry(10);
  for (const auto* uuid : {"u1", "u2", "u3"}) registry.add_booted(uuid, boot_request(uuid), "h", "w", 1);
  pm::ProcessQuery query;
  for (const auto* uuid : {"u3", "nope", "u1", "u3"}) query.add_uuids()->set_uuid(uuid);
  const auto matched = registry.match(CompiledQuery(query), false);
  REQUIRE(matched.size() == 2);
  CHECK(matched[0]->uuid == "u1");
  CHECK(matched[1]->uuid == "u3");
  // Another field OR-ed with the uuids takes the scan.
  query.add_names("u2");
  CHECK(registry.match(CompiledQuery(query), false).size() == 3);
}

TEST_CASE("the serialized instance follows every transition") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a"), "h1", "w", 1);
  auto parsed = [&] {
    pm::ProcessInstance instance;
    REQUIRE(instance.ParseFromString(record.instance_bytes()));
    return instance;
  };
  CHECK(parsed().status_code() == pm::ProcessInstance::RUNNING);
  record.on_exited(7);
  CHECK(parsed().status_code() == pm::ProcessInstance::DEAD);
  CHECK(parsed().return_code() == 7);
  record.on_restarted(2, 8, "h2");
  CHECK(parsed().status_code() == pm::ProcessInstance::RUNNING);
  CHECK(parsed().process_description().metadata().hostname() == "h2");
  CHECK(record.instance_bytes() == record.instance().SerializeAsString());
}

TEST_CASE("an instance list built from cached bytes is the list protobuf would build") {
  Registry registry(10);
  registry.add_booted("u1", boot_request("a"), "h", "w", 1);
  registry.add_booted("u2", boot_request("b"), "h", "w", 2).on_exited(3);
  const auto records = registry.all();
  pm::ProcessInstanceList expected;
  for (const auto* record : records) *expected.add_values() = record->instance();
  pm::ProcessInstanceList built;
  REQUIRE(built.ParseFromString(serialized_instance_list(records)));
  CHECK(built.SerializeAsString() == expected.SerializeAsString());
  CHECK(serialized_instance_list({}).empty());
}

TEST_CASE("each process has its log and state topics") {
  Registry registry(10);
  auto& record = registry.add_booted("u1", boot_request("a/b", "s"), "h", "w", 1);
  CHECK(record.log_feed.topic == "log/s/a%2Fb/u1");
  CHECK(record.state_feed.topic == "state/s/a%2Fb/u1");
}

TEST_CASE("the feed position appended to a reply's bytes makes its only child") {
  Registry registry(10);
  auto& first = registry.add_booted("u1", boot_request("a"), "h", "w", 1);
  auto& second = registry.add_booted("u2", boot_request("b"), "h", "w", 2);
  first.state_feed.sequence = 3;
  second.state_feed.sequence = 1;
  FeedPositionChild position("pm");
  pm::Response reply;
  reply.set_name("pm");
  reply.mutable_data()->PackFrom(pm::PlainText());
  for (int round = 0; round < 2; ++round) {  // reused: the second call must not keep the first's values
    const std::unordered_map<std::string, std::uint64_t> sessions = {{"s", 5u + round}};
    const auto bytes =
        reply.SerializeAsString() + std::string(position.bytes(7, 40 + round, {&second, &first}, sessions));
    pm::Response parsed;
    REQUIRE(parsed.ParseFromString(bytes));
    CHECK(parsed.name() == "pm");
    REQUIRE(parsed.children_size() == 1);
    CHECK(parsed.children(0).name() == "pm");
    drunc_zmq::FeedPosition feed;
    REQUIRE(parsed.children(0).data().UnpackTo(&feed));
    CHECK(feed.publisher_id() == 7);
    CHECK(feed.sequence() == static_cast<std::uint64_t>(40 + round));
    REQUIRE(feed.state_sequences_size() == 2);
    CHECK(feed.state_sequences(0) == 1);
    CHECK(feed.state_sequences(1) == 3);
    REQUIRE(feed.session_sequences().size() == 1);
    CHECK(feed.session_sequences().at("s") == static_cast<std::uint64_t>(5 + round));
  }
}

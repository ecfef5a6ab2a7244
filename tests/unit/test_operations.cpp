// The operations table (broker/operations.hpp): each row of its transition
// table, and that every operation is answered exactly once, whatever ends it.
#include <set>

#include <catch2/catch.hpp>

#include "operations.hpp"

using namespace drunc::broker;
namespace pm = dunedaq::druncschema;

namespace {

Caller caller(const std::string& command) {
  Caller who;
  who.command = command;
  who.address.routing_id = "client";
  return who;
}

pm::BootRequest boot_on(const std::vector<std::string>& hosts, const std::string& name = "p") {
  pm::BootRequest boot;
  boot.mutable_process_description()->mutable_metadata()->set_name(name);
  for (const auto& host : hosts) boot.mutable_process_restriction()->add_allowed_hosts(host);
  return boot;
}

pm::ProcessInstance instance(const std::string& uuid, pm::ProcessInstance::StatusCode status) {
  pm::ProcessInstance process;
  process.mutable_uuid()->set_uuid(uuid);
  process.set_status_code(status);
  return process;
}

const pm::ProcessInstanceList& instances(const Outcome& outcome) {
  REQUIRE(outcome.answer);
  REQUIRE(outcome.answer->flag == pm::EXECUTED_SUCCESSFULLY);
  return std::get<pm::ProcessInstanceList>(outcome.answer->data);
}

std::string error_text(const Outcome& outcome) {
  REQUIRE(outcome.answer);
  CHECK(outcome.answer->flag == pm::DRUNC_EXCEPTION_THROWN);
  return std::get<pm::PlainText>(outcome.answer->data).text();
}

// The one answered outcome among outcomes (fails if there are more or none).
Outcome& only_answer(std::vector<Outcome>& outcomes) {
  Outcome* found = nullptr;
  for (auto& outcome : outcomes)
    if (outcome.answer) {
      REQUIRE(found == nullptr);
      found = &outcome;
    }
  REQUIRE(found != nullptr);
  REQUIRE(found->reply);
  return *found;
}

}  // namespace

TEST_CASE("operations: a boot launches on its first host and answers once with the started instance") {
  Operations operations;
  auto first = operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a", "b"}));
  CHECK(first.action == Step::Action::launch);
  REQUIRE(first.operation != nullptr);
  CHECK(first.operation->host == "a");
  CHECK_FALSE(first.answer);
  CHECK(operations.launch_of("u1") == first.operation);

  auto started = operations.apply(Event::started("u1", instance("u1", pm::ProcessInstance::RUNNING)));
  auto& answered = only_answer(started);
  CHECK(answered.action == Step::Action::none);
  CHECK(answered.reply->caller().command == "boot");
  CHECK(answered.reply->valid());
  CHECK(instances(answered).values(0).uuid().uuid() == "u1");
  CHECK(operations.empty());
  answered.reply->spend();

  // A late report about it changes nothing: it has been answered.
  CHECK(operations.apply(Event::started("u1", instance("u1", pm::ProcessInstance::RUNNING))).empty());
}

TEST_CASE("operations: a failed start moves to the next host, the last failure answers with every host's reason") {
  Operations operations;
  auto first = operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a", "b"}));
  first.operation->worker = "w";
  auto second = operations.apply(Event::start_failed("u1", "connection refused"));
  REQUIRE(second.size() == 1);
  CHECK(second[0].action == Step::Action::launch);
  CHECK(second[0].operation->host == "b");
  CHECK(second[0].operation->worker.empty());
  CHECK_FALSE(second[0].answer);

  auto last = operations.apply(Event::start_failed("u1", "no such file"));
  auto& answered = only_answer(last);
  CHECK(error_text(answered) == "could not start p on any allowed host: a: connection refused; b: no such file");
  CHECK(operations.empty());
  answered.reply->spend();
}

TEST_CASE("operations: a kill that matched a starting boot kills it once started, and waits for its end") {
  Operations operations;
  auto boot = operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a"}));
  CHECK(operations.apply(Event::kill_requested("u1")).empty());
  auto kill = operations.begin_kill(operations.receive(caller("kill")), {"u1"}, {"u1"}, {});
  CHECK_FALSE(kill.answer);

  auto started = operations.apply(Event::started("u1", instance("u1", pm::ProcessInstance::RUNNING)));
  auto& boot_answer = only_answer(started);
  CHECK(boot_answer.action == Step::Action::kill_started);
  CHECK(boot_answer.uuid == "u1");
  boot_answer.reply->spend();

  auto ended = operations.apply(Event::ended("u1", instance("u1", pm::ProcessInstance::DEAD)));
  auto& kill_answer = only_answer(ended);
  CHECK(kill_answer.reply->caller().command == "kill");
  CHECK(instances(kill_answer).values(0).status_code() == pm::ProcessInstance::DEAD);
  kill_answer.reply->spend();
  CHECK(operations.empty());
}

TEST_CASE("operations: a boot that fails everywhere settles the kills waiting for it, leaving it out") {
  Operations operations;
  operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a"}));
  operations.apply(Event::kill_requested("u1"));
  pm::ProcessInstance other = instance("u2", pm::ProcessInstance::DEAD);
  operations.begin_kill(operations.receive(caller("kill")), {"u1", "u2"}, {"u1"}, {{"u2", other}});

  auto failed = operations.apply(Event::start_failed("u1", "refused"));
  REQUIRE(failed.size() == 2);
  CHECK(error_text(failed[0]).find("a: refused") != std::string::npos);
  CHECK(failed[0].reply->caller().command == "boot");
  const auto& killed = instances(failed[1]);
  CHECK(failed[1].reply->caller().command == "kill");
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).uuid().uuid() == "u2");
  for (auto& outcome : failed) outcome.reply->spend();
  CHECK(operations.empty());
}

TEST_CASE("operations: a restart waits for the exit, then launches the next generation, a kill of it answers first") {
  Operations operations;
  operations.begin_restart_after_exit(operations.receive(caller("restart")), "u1", boot_on({"a"}), 2);
  operations.begin_kill(operations.receive(caller("kill")), {"u1"}, {"u1"}, {});
  CHECK(operations.apply(Event::kill_requested("u1")).empty());
  CHECK(operations.starting().empty());  // still waiting for the exit

  auto ended = operations.apply(Event::ended("u1", instance("u1", pm::ProcessInstance::DEAD)));
  REQUIRE(ended.size() == 2);
  CHECK(ended[0].reply->caller().command == "kill");  // with the process as it ended
  CHECK(instances(ended[0]).values(0).status_code() == pm::ProcessInstance::DEAD);
  ended[0].reply->spend();
  CHECK(ended[1].action == Step::Action::launch);
  CHECK_FALSE(ended[1].answer);
  REQUIRE(ended[1].operation != nullptr);
  CHECK(ended[1].operation->generation == 2);
  CHECK(ended[1].operation->host == "a");
  CHECK(operations.starting().size() == 1);

  auto started = operations.apply(Event::started("u1", instance("u1", pm::ProcessInstance::RUNNING)));
  auto& answered = only_answer(started);
  CHECK(answered.action == Step::Action::kill_started);  // the kill came while it was restarting
  answered.reply->spend();
  CHECK(operations.empty());
}

TEST_CASE("operations: a kill answers in match order once the last process it waits for ends") {
  Operations operations;
  auto dead = instance("u0", pm::ProcessInstance::DEAD);
  auto kill =
      operations.begin_kill(operations.receive(caller("kill")), {"u2", "u0", "u1"}, {"u1", "u2"}, {{"u0", dead}});
  CHECK_FALSE(kill.answer);
  CHECK(operations.apply(Event::ended("u1", instance("u1", pm::ProcessInstance::DEAD))).empty());
  CHECK(operations.apply(Event::ended("u9", instance("u9", pm::ProcessInstance::DEAD))).empty());  // not its business
  auto last = operations.apply(Event::ended("u2", instance("u2", pm::ProcessInstance::DEAD)));
  auto& answered = only_answer(last);
  const auto& list = instances(answered);
  REQUIRE(list.values_size() == 3);
  CHECK(list.values(0).uuid().uuid() == "u2");
  CHECK(list.values(1).uuid().uuid() == "u0");
  CHECK(list.values(2).uuid().uuid() == "u1");
  answered.reply->spend();
}

TEST_CASE("operations: a kill with nothing to wait for is answered at once") {
  Operations operations;
  auto kill = operations.begin_kill(operations.receive(caller("kill")), {"u0"}, {},
                                    {{"u0", instance("u0", pm::ProcessInstance::DEAD)}});
  REQUIRE(kill.reply);
  CHECK(instances(kill).values_size() == 1);
  CHECK(operations.empty());
  kill.reply->spend();
}

TEST_CASE("operations: abandon_all answers every operation with the reason and empties the table") {
  Operations operations;
  operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a"}));
  operations.begin_restart_after_exit(operations.receive(caller("restart")), "u2", boot_on({"a"}, "q"), 3);
  operations.begin_kill(operations.receive(caller("terminate")), {"u3", "u4"}, {"u3", "u4"}, {});
  operations.begin_kill(operations.receive(caller("kill")), {"u1"}, {"u1"}, {});

  auto outcomes = operations.abandon_all("shut down");
  std::multiset<std::string> answered;
  for (auto& outcome : outcomes) {
    if (!outcome.reply) continue;
    const std::string command = outcome.reply->caller().command;
    answered.insert(command);
    // The kill waited for the boot only: abandoning the boot settled it (with nothing killed).
    if (command == "kill")
      CHECK(instances(outcome).values_size() == 0);
    else
      CHECK(error_text(outcome).find(": shut down") != std::string::npos);
    outcome.reply->spend();
  }
  CHECK(answered == std::multiset<std::string>{"boot", "kill", "restart", "terminate"});
  CHECK(operations.empty());
}

TEST_CASE("operations: a launch abandoned alone (shutting down) answers with the reason") {
  Operations operations;
  operations.begin_boot(operations.receive(caller("boot")), "u1", boot_on({"a", "b"}));
  auto abandoned = operations.apply(Event::abandoned("the process manager is shutting down", "u1"));
  auto& answered = only_answer(abandoned);
  CHECK(error_text(answered) == "p: the process manager is shutting down");
  answered.reply->spend();
  CHECK(operations.empty());
}

TEST_CASE("operations: a Reply is spent once, moving it hands over the duty to answer") {
  Operations operations;
  Reply reply = operations.receive(caller("ps"));
  CHECK(reply.valid());
  Reply moved = std::move(reply);
  CHECK_FALSE(reply.valid());
  CHECK(moved.valid());
  moved.spend();
  CHECK_FALSE(moved.valid());
}

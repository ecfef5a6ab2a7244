// Many requests in flight, replies matched by id; a slow command never holds
// up another request, from the same client or another.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "fixture.hpp"

using namespace test;
using drunc::wire::Command;

TEST_CASE("50 requests in flight on one socket are all answered, matched by request id") {
  TestBroker broker;
  auto client = broker.client();
  std::map<std::string, Command> sent;
  const auto boot = boot_request("quick", "true");
  const pm::ProcessQuery everything;
  for (int i = 0; i < 50; ++i) {
    const Command command = i % 3 == 0 ? Command::boot : i % 3 == 1 ? Command::ps : Command::describe;
    const google::protobuf::Message* data = command == Command::boot
                                                ? static_cast<const google::protobuf::Message*>(&boot)
                                            : command == Command::ps ? &everything
                                                                     : nullptr;
    sent.emplace(client.send(command, data), command);
  }
  REQUIRE(sent.size() == 50);
  std::set<std::string> answered;
  while (answered.size() < 50) {
    auto reply = client.receive(kPatience);
    REQUIRE(reply);
    REQUIRE_FALSE(reply->more);
    auto found = sent.find(reply->request_id);
    REQUIRE(found != sent.end());
    CHECK(answered.insert(reply->request_id).second);  // exactly one answer each
    CHECK(reply->response.flag() == pm::EXECUTED_SUCCESSFULLY);
    const std::string expected_type = found->second == Command::describe ? "dunedaq.druncschema.Description"
                                                                         : "dunedaq.druncschema.ProcessInstanceList";
    CHECK(reply->response.data().type_url() == "type.googleapis.com/" + expected_type);
  }
  CHECK(client.ps().values_size() == 17);
}

TEST_CASE("a kill waiting on its timeout does not delay a ps from another client") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(3000); });
  auto controller = broker.client();
  auto operator_shell = broker.client();
  Events events(broker, {"log/"});
  const auto uuid =
      boot(controller, boot_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; sleep 300; true"}));
  events.wait_for_line(uuid, "ready");

  const auto kill_id = controller.send(Command::kill, &static_cast<const pm::ProcessQuery&>(query_uuid(uuid)));
  const auto listed = operator_shell.ps();  // answered while the kill waits for SIGKILL time
  REQUIRE(listed.values_size() == 1);
  CHECK(listed.values(0).status_code() == pm::ProcessInstance::RUNNING);
  CHECK_FALSE(controller.receive(std::chrono::milliseconds(0)));  // the kill is still pending

  const auto reply = controller.wait(kill_id, kPatience);
  pm::ProcessInstanceList killed;
  REQUIRE(reply.response.data().UnpackTo(&killed));
  CHECK(killed.values(0).return_code() == 137);
}

TEST_CASE("on one socket, a slow kill sent first is answered after a ps sent next") {
  TestBroker broker([](auto& config) { config.kill_timeout = std::chrono::milliseconds(2000); });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto uuid = boot(client, boot_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; sleep 300; true"}));
  events.wait_for_line(uuid, "ready");
  const auto query = query_uuid(uuid);
  const auto kill_id = client.send(Command::kill, &query);
  const auto ps_id = client.send(Command::ps, &query);
  auto first = client.receive(kPatience);
  REQUIRE(first);
  CHECK(first->request_id == ps_id);
  auto second = client.receive(kPatience);
  REQUIRE(second);
  CHECK(second->request_id == kill_id);
}

TEST_CASE("boots of many processes pipelined from one client all succeed") {
  TestBroker broker;
  auto client = broker.client();
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    const auto request = boot_request("app-" + std::to_string(i), "sleep", {"300"});
    ids.insert(client.send(Command::boot, &request));
  }
  std::set<std::string> uuids;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto reply = client.receive(kPatience);
    REQUIRE(reply);
    CHECK(ids.count(reply->request_id) == 1);
    pm::ProcessInstanceList list;
    REQUIRE(reply->response.data().UnpackTo(&list));
    uuids.insert(list.values(0).uuid().uuid());
  }
  CHECK(uuids.size() == 100);
  const auto killed = client.terminate();
  CHECK(killed.values_size() == 100);
  for (const auto& instance : killed.values()) CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
}

TEST_CASE("terminate right after pipelined boots also kills the processes still starting") {
  TestBroker broker;
  auto client = broker.client();
  std::set<std::string> boot_ids;
  for (int i = 0; i < 50; ++i) {
    const auto request = boot_request("app-" + std::to_string(i), "sleep", {"300"});
    boot_ids.insert(client.send(Command::boot, &request));
  }
  const pm::ProcessQuery everything;
  const auto terminate_id = client.send(Command::terminate, &everything);
  const auto terminated = client.wait(terminate_id, kPatience);
  pm::ProcessInstanceList list;
  REQUIRE(terminated.response.data().UnpackTo(&list));
  CHECK(list.values_size() == 50);
  for (const auto& instance : list.values()) CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
  for (std::size_t i = 0; i < boot_ids.size(); ++i) CHECK(client.receive(kPatience));  // every boot answered
  const auto after = client.ps();
  for (const auto& instance : after.values()) CHECK(instance.status_code() == pm::ProcessInstance::DEAD);
}

TEST_CASE("after the broker drops an oversized message, the replies owed to the client still arrive") {
  TestBroker broker([](auto& config) {
    config.kill_timeout = std::chrono::milliseconds(2000);
    config.max_message_bytes = 64 * 1024;
  });
  auto client = broker.client();
  Events events(broker, {"log/"});
  const auto uuid = boot(client, boot_request("stubborn", "bash", {"-c", "trap '' QUIT; echo ready; sleep 300; true"}));
  events.wait_for_line(uuid, "ready");
  const auto query = query_uuid(uuid);
  const auto kill_id = client.send(Command::kill, &query);
  auto huge = boot_request("huge", "true");
  // Over max_message_bytes + 16 MiB: ZeroMQ drops the connection, which is re-made.
  (*huge.mutable_process_description()->mutable_env())["BIG"] = std::string(17 * 1024 * 1024, 'x');
  client.send(Command::boot, &huge);
  const auto reply = client.wait(kill_id, kPatience);
  pm::ProcessInstanceList killed;
  REQUIRE(reply.response.data().UnpackTo(&killed));
  CHECK(killed.values(0).return_code() == 137);
  CHECK(client.ps().values_size() == 1);  // and the same client is served on
}

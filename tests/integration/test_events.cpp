// The XPUB feed: state changes and log lines, with the topic grammar and the
// sequence numbers of docs/PROTOCOL.md.
#include <catch2/catch.hpp>
#include <zmq_addon.hpp>

#include "drunc_zmq/events.pb.h"
#include "druncschema/broadcast.pb.h"
#include "druncschema/generic.pb.h"
#include "fixture.hpp"
#include "process_table.hpp"
#include "wire/topic.hpp"

using namespace test;

TEST_CASE("a subscriber receives every transition of a process, with its generation") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/events-test/", "log/events-test/"});
  // dash, unlike bash, dies of SIGQUIT (131); it says "ready" once it runs.
  const auto uuid = boot(client, boot_request("app", "sh", {"-c", "echo ready; sleep 300"}, "events-test"));
  std::uint32_t generation = 0;
  CHECK(events.wait_for_state(uuid, "booted", &generation).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(generation == 1);
  events.wait_for_line(uuid, "ready");
  client.restart(query_uuid(uuid));
  CHECK(events.wait_for_state(uuid, "killed", &generation).return_code() == 131);
  CHECK(generation == 1);
  CHECK(events.wait_for_state(uuid, "restarted", &generation).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(generation == 2);
  client.kill(query_uuid(uuid));
  CHECK(events.wait_for_state(uuid, "killed", &generation).status_code() == pm::ProcessInstance::DEAD);
  CHECK(generation == 2);
  client.flush();
  CHECK(events.wait_for_state(uuid, "flushed").uuid().uuid() == uuid);
}

TEST_CASE("log lines are published in order, on a topic of kind, session, name and uuid") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"log/feed/counter.v2/"});
  const auto uuid = boot(client, boot_request("counter.v2", "seq", {"1", "500"}, "feed"));
  const std::string topic = "log/feed/counter.v2/" + uuid;
  std::uint64_t last_sequence = 0;
  for (int expected = 1; expected <= 500; ++expected) {
    const auto event = events.wait_for([](const drunc::client::Event&) { return true; });
    CHECK(event.topic == topic);
    pm::LogLine line;
    REQUIRE(line.ParseFromString(event.payload));
    REQUIRE(line.line() == std::to_string(expected));
    CHECK(line.uuid().uuid() == uuid);
    CHECK(event.meta.sequence() > last_sequence);
    CHECK(event.meta.generation() == 1);
    CHECK(event.meta.topic_sequence() == static_cast<std::uint64_t>(expected));  // no gap on this topic
    last_sequence = event.meta.sequence();
  }
}

TEST_CASE("a subscriber filters by session and by name prefix") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/wanted/app/"});
  const auto other_session = boot(client, boot_request("app", "true", {}, "other"));
  const auto longer_name = boot(client, boot_request("app2", "true", {}, "wanted"));
  const auto wanted = boot(client, boot_request("app", "true", {}, "wanted"));
  const auto event = events.wait_for([](const drunc::client::Event&) { return true; });
  CHECK(event.topic == "state/wanted/app/" + wanted);
  (void)other_session;
  (void)longer_name;
}

TEST_CASE("a process without a session and with a slash in its name has an unambiguous topic") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state//a%2Fb/"});
  const auto uuid = boot(client, boot_request("a/b", "true", {}, ""));
  const auto event = events.wait_for([](const drunc::client::Event&) { return true; });
  CHECK(event.topic == "state//a%2Fb/" + uuid);
}

TEST_CASE("every event carries the publisher id that describe announces, and sequences increase") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"state/", "log/"});
  drunc_zmq::EventFeed feed;
  REQUIRE(client.describe().broadcast().UnpackTo(&feed));
  boot(client, boot_request("talker", "bash", {"-c", "echo one; echo two"}));
  std::uint64_t last = 0;
  for (int i = 0; i < 3; ++i) {  // booted, two lines (exited may come before or after)
    const auto event = events.wait_for([](const drunc::client::Event&) { return true; });
    CHECK(event.meta.publisher_id() == feed.publisher_id());
    CHECK(event.meta.sequence() > last);
    last = event.meta.sequence();
  }
}

TEST_CASE("drunc broadcasts: command received, its outcome, and each process exit") {
  TestBroker broker([](auto& config) { config.session = "bcast-test"; });
  auto client = broker.client();
  pm::Token token;
  token.set_user_name("alice");
  client.set_token(token);
  Events events(broker, {"bcast/bcast-test/test-pm"});
  auto broadcast_with = [&](pm::BroadcastType type, const std::string& text) {
    pm::BroadcastMessage message;
    events.wait_for([&](const drunc::client::Event& event) {
      pm::PlainText plain;
      return message.ParseFromString(event.payload) && message.type() == type && message.data().UnpackTo(&plain) &&
             plain.text().find(text) != std::string::npos;
    });
    return message;
  };
  client.ps();
  const auto received = broadcast_with(pm::COMMAND_RECEIVED, "alice sent ps");
  CHECK(received.emitter().process() == "test-pm");
  CHECK(received.emitter().session() == "bcast-test");
  broadcast_with(pm::COMMAND_EXECUTION_SUCCESS, "alice executed ps");
  CHECK_THROWS(client.restart(query_name("nobody")));
  broadcast_with(pm::DRUNC_EXCEPTION_RAISED, "restart from alice failed: DRUNC_EXCEPTION_THROWN");
  const auto uuid = boot(client, boot_request("short", "bash", {"-c", "exit 4"}));
  broadcast_with(pm::SUBPROCESS_STATUS_UPDATE, "uuid " + uuid + ", generation 1) exited with status 4");
}

namespace {

// Reads the log lines of uuid until its exit, REQUIREing that line n carries
// topic_sequence n and that number(line) is n. Returns how many lines came.
std::uint64_t lines_until_exit(Events& events, const std::string& uuid,
                               const std::function<std::string(const std::string&)>& number) {
  std::uint64_t count = 0;
  while (true) {
    const auto event = events.wait_for([](const drunc::client::Event&) { return true; });
    if (event.topic.rfind("state/", 0) == 0) {
      // Only this process's exit.
      if (event.topic.ends_with(uuid) && event.meta.transition() == "exited") return count;
      continue;
    }
    pm::LogLine line;
    REQUIRE(line.ParseFromString(event.payload));
    ++count;
    REQUIRE(number(line.line()) == std::to_string(count));
    REQUIRE(event.meta.topic_sequence() == count);
  }
}

}  // namespace

TEST_CASE("a subscriber that keeps up receives all 100,000 lines of a process, in order") {
  TestBroker broker;
  auto client = broker.client();
  Events events(broker, {"log/flood/", "state/flood/"});
  const auto uuid = boot(client, boot_request("printer", "seq", {"1", "100000"}, "flood"));
  // Every line, in order, then the exit.
  CHECK(lines_until_exit(events, uuid, [](const std::string& line) { return line; }) == 100000);
}

namespace {

std::uint64_t events_dropped(drunc::client::Client& client) {
  drunc_zmq::EventFeed feed;
  REQUIRE(client.describe().broadcast().UnpackTo(&feed));
  return feed.events_dropped();
}

}  // namespace

TEST_CASE(
    "a stalled subscriber loses events and the broker counts them, while a subscriber that keeps up loses nothing") {
  TestBroker broker([](drunc::broker::Config& config) { config.events_high_water_mark = 1000; });
  auto client = broker.client();
  // Subscribed, never reading, with a small kernel buffer: it can hold about
  // 1,000 messages in the broker's queue and a few MiB in TCP buffers.
  zmq::context_t context;
  zmq::socket_t stalled(context, zmq::socket_type::sub);
  stalled.set(zmq::sockopt::rcvhwm, 1);
  stalled.set(zmq::sockopt::rcvbuf, 4096);
  stalled.set(zmq::sockopt::linger, 0);
  stalled.set(zmq::sockopt::subscribe, "log/");
  stalled.connect(broker.events_endpoint());
  Events events(broker, {"log/paced/", "state/paced/"});
  CHECK(events_dropped(client) == 0);

  // 2,500 lines of 8 kB (20 MB), paced at about 1,000 lines per second so
  // that a reader on a loaded machine keeps up.
  const auto uuid = boot(client, boot_request("paced", "/usr/bin/python3",
                                              {"-c",
                                               "import sys, time\n"
                                               "for i in range(1, 2501):\n"
                                               "    print(str(i).ljust(8000, '.'), flush=True)\n"
                                               "    time.sleep(0.001)\n"},
                                              "paced"));
  CHECK(lines_until_exit(events, uuid, [](const std::string& line) { return line.substr(0, line.find('.')); }) == 2500);
  const auto dropped = events_dropped(client);
  CHECK(dropped > 0);
  CHECK(dropped <= 2501);  // the lines and the exit, at most
}

TEST_CASE("events nobody subscribed to are counted in the sequences all the same") {
  TestBroker broker;
  auto client = broker.client();
  Events states(broker, {"state/unheard/"});
  const auto uuid = boot(client, boot_request("counter", "seq", {"1", "10"}, "unheard"));
  states.wait_for_state(uuid, "exited");
  pm::LogRequest request;
  *request.mutable_query() = query_uuid(uuid);
  request.set_how_far(100);
  int lines = 0;
  // Ten lines went unpublished (no log subscriber): the next one is the 11th.
  CHECK(client.logs(request, [&](const pm::LogLine&) { ++lines; }) == 11);
  CHECK(lines == 10);

  Events logs(broker, {"log/unheard/"});
  client.restart(query_uuid(uuid));
  const auto event = logs.wait_for([&](const drunc::client::Event& e) { return e.topic.ends_with(uuid); });
  CHECK(event.meta.topic_sequence() == 11);
  CHECK(event.meta.generation() == 2);
}

TEST_CASE("a subscriber that joins late keeps a table equal to ps from one ps and the events after it") {
  TestBroker broker;
  auto client = broker.client();
  auto readiness = std::make_unique<Events>(broker, std::vector<std::string>{"log/late/", "state/late/"});
  std::vector<std::string> sleepers;
  for (int i = 0; i < 4; ++i) {
    sleepers.push_back(
        boot(client, boot_request("sleeper-" + std::to_string(i), "sh", {"-c", "echo ready; exec sleep 300"}, "late")));
    readiness->wait_for_line(sleepers.back(), "ready");
  }
  const auto quitter = boot(client, boot_request("quitter", "true", {}, "late"));
  readiness->wait_for_state(quitter, "exited");  // flushed below: it must be dead by then
  client.kill(query_uuid(sleepers[0]));

  // The late subscriber: state events of the session, and broadcasts last.
  drunc::client::Subscriber subscriber(broker.events_endpoint(), {"state/late/", "bcast/"});
  drunc::client::ProcessTable table;
  auto take_ps = [&] {
    table.reset(client.call(drunc::wire::Command::ps, &static_cast<const pm::ProcessQuery&>(query_session("late"))));
  };
  take_ps();
  bool changes_made = false;
  std::string newcomer;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  // Until the table has seen every change below: the changes are made once it is live.
  while (std::chrono::steady_clock::now() < deadline) {
    auto event = subscriber.next(200ms);
    if (!event) {
      if (!table.live()) take_ps();  // the subscription was not live yet: ps again
      continue;
    }
    if (table.apply(*event) == drunc::client::ProcessTable::Applied::gap) {
      take_ps();
      continue;
    }
    if (table.live() && !changes_made) {
      changes_made = true;
      client.kill(query_uuid(sleepers[1]));
      client.restart(query_uuid(sleepers[2]));
      client.flush(query_uuid(quitter));
      newcomer = boot(client, boot_request("newcomer", "true", {}, "late"));
    }
    if (!changes_made) continue;
    // Equal to a fresh ps, process by process?
    const auto now = client.ps(query_session("late"));
    bool equal = static_cast<std::size_t>(now.values_size()) == table.processes().size();
    for (const auto& instance : now.values()) {
      auto found = table.processes().find(instance.uuid().uuid());
      equal = equal && found != table.processes().end() &&
              found->second.SerializeAsString() == instance.SerializeAsString();
    }
    // Until the last change is final (the newcomer has exited), so that a later ps cannot differ.
    const auto last = table.processes().find(newcomer);
    if (equal && last != table.processes().end() && last->second.status_code() == pm::ProcessInstance::DEAD) break;
  }
  REQUIRE(changes_made);
  const auto final_ps = client.ps(query_session("late"));
  REQUIRE(table.processes().size() == static_cast<std::size_t>(final_ps.values_size()));
  for (const auto& instance : final_ps.values())
    CHECK(table.processes().at(instance.uuid().uuid()).SerializeAsString() == instance.SerializeAsString());
  CHECK_FALSE(table.processes().contains(quitter));
  CHECK(table.processes().at(sleepers[1]).status_code() == pm::ProcessInstance::DEAD);
  CHECK(table.processes().at(sleepers[2]).status_code() == pm::ProcessInstance::RUNNING);
}

TEST_CASE("the client Subscriber takes events with frames it does not know yet (a future extension)") {
  zmq::context_t context(1);
  zmq::socket_t publisher(context, zmq::socket_type::xpub);
  publisher.set(zmq::sockopt::linger, 0);
  publisher.bind("tcp://127.0.0.1:*");
  drunc::client::Subscriber subscriber(publisher.get(zmq::sockopt::last_endpoint), {"log/"});
  zmq::message_t subscription;  // the subscription has arrived: events sent from now on are delivered
  REQUIRE(publisher.recv(subscription));
  drunc_zmq::EventMeta meta;
  meta.set_sequence(1);
  std::vector<zmq::message_t> frames;
  frames.emplace_back(std::string_view("log/s/n/u"));
  frames.emplace_back(std::string_view("payload"));
  frames.emplace_back(meta.SerializeAsString());
  frames.emplace_back(std::string_view("an extension frame"));
  zmq::send_multipart(publisher, frames);
  const auto event = subscriber.next(kPatience);
  REQUIRE(event);
  CHECK(event->topic == "log/s/n/u");
  CHECK(event->payload == "payload");
  CHECK(event->meta.sequence() == 1);
}

// Faults inside the broker: a launcher worker or the broker thread that
// fails, and requests during shutdown. Every request still gets its one
// answer, and nothing the broker started outlives it.
#include <future>

#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include "fixture.hpp"

using namespace test;
using drunc::client::ResponseError;

namespace {

// A Broker on loopback ports whose failure callback fulfils a future.
struct WatchedBroker {
  explicit WatchedBroker(std::chrono::milliseconds kill_timeout = std::chrono::milliseconds(500)) {
    spdlog::set_level(spdlog::level::off);  // the critical lines are the point of these tests
    drunc::broker::Config config;
    config.name = "test-pm";
    config.control_endpoint = "tcp://127.0.0.1:*";
    config.events_endpoint = "tcp://127.0.0.1:*";
    config.kill_timeout = kill_timeout;
    broker = std::make_unique<drunc::broker::Broker>(config,
                                                     [this](const std::string& reason) { failure.set_value(reason); });
  }
  ~WatchedBroker() { spdlog::set_level(spdlog::level::warn); }
  drunc::client::Client client() const { return drunc::client::Client(broker->control_endpoint(), kPatience); }
  std::string wait_for_failure() {
    auto reported = failure.get_future();
    REQUIRE(reported.wait_for(kPatience) == std::future_status::ready);
    return reported.get();
  }

  std::promise<std::string> failure;
  std::unique_ptr<drunc::broker::Broker> broker;
};

// A process that ignores the polite SIGQUIT, so that a kill waits for the SIGKILL.
pm::BootRequest stubborn(const std::string& name, const std::string& marker) {
  return boot_request(name, "bash", {"-c", "trap '' QUIT TERM; echo ready; while true; do sleep 1; done; : " + marker});
}

}  // namespace

TEST_CASE(
    "a launcher worker that fails: its processes are killed and reported lost, waiting requests answered, "
    "the worker restarted") {
  const auto marker = unique_marker("worker-fault");
  WatchedBroker watched(std::chrono::seconds(60));  // a kill now waits for its SIGKILL, a minute away
  auto client = watched.client();
  Events events(watched.broker->events_endpoint(), client, {"state/", "log/"});
  // Once it prints, its trap is set: the kill below waits for the SIGKILL.
  const auto first = boot(client, stubborn("first", marker));
  events.wait_for_line(first, "ready");
  const auto second = boot(client, stubborn("second", marker));
  events.wait_for_line(second, "ready");
  const auto pids = processes_with_marker(marker);
  REQUIRE(pids.size() >= 2);
  const auto first_only = query_uuid(first);
  const auto kill_id = client.send(drunc::wire::Command::kill, &first_only);

  watched.broker->inject_fault_for_test("fault-worker local");

  // The waiting kill is answered: the process is DEAD, lost.
  auto reply = client.wait(kill_id, kPatience);
  REQUIRE(reply.response.flag() == pm::EXECUTED_SUCCESSFULLY);
  pm::ProcessInstanceList killed;
  REQUIRE(reply.response.data().UnpackTo(&killed));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(killed.values(0).return_code() == -1);
  CHECK(events.wait_for_state(second, "lost").status_code() == pm::ProcessInstance::DEAD);
  CHECK(wait_until_gone(pids));

  // The broker goes on with a new launcher: boot, restart and kill work.
  // bash itself ignores SIGQUIT: this one exits on it by its trap, which
  // is set once it has printed (each incarnation is signalled after that).
  const auto third =
      boot(client, boot_request("third", "bash",
                                {"-c", "trap 'exit 0' QUIT; echo ready; while true; do sleep 0.1; done; : " + marker}));
  events.wait_for_line(third, "ready");
  const auto restarted = client.restart(query_uuid(third));
  CHECK(restarted.values(0).status_code() == pm::ProcessInstance::RUNNING);
  CHECK(restarted.values(0).process_description().metadata().uuid().uuid() == third);
  events.wait_for_line(third, "ready");
  CHECK(client.kill(query_uuid(third)).values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK_FALSE(watched.broker->failed());
  watched.broker.reset();
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE(
    "a launcher worker that keeps failing is not restarted forever: a fourth failure within a minute stops the "
    "broker") {
  const auto marker = unique_marker("worker-faults");
  WatchedBroker watched;
  auto client = watched.client();
  Events events(watched.broker->events_endpoint(), client, {"state/"});
  // Three restarts within a minute are allowed; the fourth failure stops the broker.
  for (int failure = 1; failure <= 4; ++failure) {
    const auto uuid = boot(client, stubborn("victim-" + std::to_string(failure), marker));
    watched.broker->inject_fault_for_test("fault-worker local");
    events.wait_for_state(uuid, "lost");
  }
  CHECK_THAT(watched.wait_for_failure(), Catch::Contains("local") && Catch::Contains("4 times within a minute"));
  CHECK(watched.broker->failed());
  watched.broker.reset();
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("a broker thread that fails tells its owner, and destroying the broker kills its processes") {
  const auto marker = unique_marker("loop-fault");
  WatchedBroker watched;
  auto client = watched.client();
  boot(client, stubborn("victim", marker));
  const auto pids = processes_with_marker(marker);
  REQUIRE_FALSE(pids.empty());
  watched.broker->inject_fault_for_test("fault");
  CHECK_THAT(watched.wait_for_failure(), Catch::Contains("failure injected"));
  watched.broker.reset();
  CHECK(wait_until_gone(pids));
}

TEST_CASE("requests that arrive during shutdown are read and answered, with the reason") {
  const auto marker = unique_marker("shutdown");
  WatchedBroker watched(std::chrono::seconds(4));  // the shutdown lasts until the SIGKILL, 4 s after SIGQUIT
  auto client = watched.client();
  boot(client, stubborn("slow-to-die", marker));
  auto stopping = std::async(std::launch::async, [&] { watched.broker.reset(); });
  // Until the broker has begun to shut down, ps succeeds; then it is refused with the reason.
  std::string refusal;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (refusal.empty() && std::chrono::steady_clock::now() < deadline) {
    try {
      client.ps();
    } catch (const ResponseError& error) {
      CHECK(error.flag() == pm::DRUNC_EXCEPTION_THROWN);
      refusal = error.text();
    }
  }
  CHECK_THAT(refusal, Catch::Contains("shutting down") && Catch::Contains("ps"));
  stopping.get();
}

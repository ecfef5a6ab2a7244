// The backend seam (workers/backend.hpp): a backend defined in the test tree
// (spawn_backend.*), added to the table with one line, configured through
// its own section, boots, streams, falls back and kills through the real
// broker over real sockets. Nothing in broker/ names it.
#include <catch2/catch.hpp>

#include <csignal>

#include "config.hpp"
#include "fixture.hpp"
#include "spawn_backend.hpp"

using namespace test;

namespace {

// The table of this build, and the test's backend: the one line.
drunc::workers::BackendTable table_with_spawn() {
  auto table = drunc::workers::backend_table();
  table.push_back(spawn_backend_type());
  return table;
}

pm::BootRequest spawn_request(const std::string& name, const std::vector<std::string>& hosts, const std::string& exec,
                              const std::vector<std::string>& args) {
  auto request = boot_request(name, exec, args);
  request.mutable_process_restriction()->clear_allowed_hosts();
  for (const auto& host : hosts) request.mutable_process_restriction()->add_allowed_hosts(host);
  return request;
}

}  // namespace

TEST_CASE("seam: a backend from the test tree boots and kills through the real broker") {
  const auto config =
      drunc::broker::parse_config(R"({"backends": {"spawn": {"prefix": "pool/"}}})", "test", table_with_spawn());
  TestBroker broker([&](drunc::broker::Config& adjusted) { adjusted.backends = config.backends; });
  auto client = broker.client();
  Events events(broker, {"state/", "log/"});

  // Output streams, the exit is reported with its status.
  auto request = spawn_request("spawned", {"pool/node-1"}, "sh", {"-c", "echo \"hello $GREETING\"; exit 3"});
  (*request.mutable_process_description()->mutable_env())["GREETING"] = "from spawn";
  const auto said = boot(client, request);
  events.wait_for_line(said, "hello from spawn");
  CHECK(events.wait_for_state(said, "exited").return_code() == 3);
  const auto instances = client.ps(query_uuid(said));
  REQUIRE(instances.values_size() == 1);
  CHECK(instances.values(0).process_description().metadata().hostname() == "pool/node-1");

  // A host no backend serves is skipped; the next one of allowed_hosts is the spawn backend's.
  const auto sleeper = boot(client, spawn_request("sleeper", {"nowhere/x y", "pool/node-2"}, "sleep", {"300"}));
  const auto killed = client.kill(query_uuid(sleeper));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).status_code() == pm::ProcessInstance::DEAD);
  CHECK(killed.values(0).return_code() == 128 + SIGQUIT);

  // The built-in backends are still there, in the same broker.
  const auto local = boot(client, spawn_request("local", {"localhost"}, "true", {}));
  CHECK(events.wait_for_state(local, "exited").return_code() == 0);
}

TEST_CASE("seam: a backend's section is its own: unknown keys are refused, naming it") {
  CHECK_THROWS_WITH(
      drunc::broker::parse_config(R"({"backends": {"spawn": {"prefx": "x"}}})", "f.json", table_with_spawn()),
      Catch::Contains("unknown setting \"backends.spawn.prefx\""));
  // Without the line in the table, the section names no backend.
  CHECK_THROWS_WITH(drunc::broker::parse_config(R"({"backends": {"spawn": {}}})", "f.json"),
                    Catch::Contains("unknown setting \"backends.spawn\""));
}

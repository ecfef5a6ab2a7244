// From allowed_hosts entries to backends, workers, hosts, ports and logins
// (broker/host_router.hpp, workers/host_address.hpp), over the real backend
// table with its default settings: no sockets, no threads.
#include <catch2/catch.hpp>

#include "host_address.hpp"
#include "host_router.hpp"
#include "local/local_backend.hpp"
#include "ssh/ssh_backend.hpp"

using namespace drunc::broker;
using drunc::workers::parse_port;
using drunc::workers::plausible_host_name;
namespace pm = dunedaq::druncschema;
namespace workers = drunc::workers;

namespace {

workers::BackendSettings settings_with_workers(int count) {
  auto settings = workers::BackendSettings::defaults();
  auto& ssh = settings.get<workers::SshSettings>();
  ssh.workers = count;
  ssh.default_port = 22;
  ssh.default_user = "daq";
  return settings;
}

std::vector<workers::ConfiguredBackend> backends_with_workers(int count) {
  return workers::create_backends(settings_with_workers(count));
}

// A backend in the test only: serves "test:NAME" on one worker.
class PrefixBackend : public workers::Backend {
 public:
  std::vector<std::string> worker_names() const override { return {"test"}; }
  std::optional<workers::Placement> place(const std::string& host, const pm::ProcessMetadata&) const override {
    if (host.rfind("test:", 0) != 0) return std::nullopt;
    return workers::Placement{"test", host.substr(5), 0, {}};
  }
  std::unique_ptr<workers::Worker> start_worker(zmq::context_t&, const std::string&, const std::string&,
                                                const std::string&) const override {
    return nullptr;
  }
};

}  // namespace

TEST_CASE("host router: ports are 1 to 65535 in decimal digits only") {
  CHECK(parse_port("22") == 22);
  CHECK(parse_port("65535") == 65535);
  for (const char* junk : {"", "0", "65536", "2222x", "+22", " 1", "1 ", "-1", "000022x", "999999"})
    CHECK(parse_port(junk) == 0);
}

TEST_CASE("host router: host names are plain words, not shell text") {
  CHECK(plausible_host_name("np04-srv-001.cern.ch"));
  CHECK(plausible_host_name("fe80::1%eth0"));
  for (const char* hostile : {"a;rm -rf /", "a b", "a'b", "$(id)", "a\nb", "`id`"})
    CHECK_FALSE(plausible_host_name(hostile));
}

TEST_CASE("host router: local names without a port go to the local backend") {
  const auto backends = backends_with_workers(4);
  pm::ProcessMetadata metadata;
  for (const char* local : {"localhost", "127.0.0.1", "::1"}) {
    const auto route = route_host(backends, local, metadata);
    REQUIRE(route);
    CHECK(route->backend == "local");
    CHECK(route->worker == "local");
    CHECK(route->host == local);
  }
  // With a port: an SSH server on this machine.
  const auto ssh = route_host(backends, "localhost:2222", metadata);
  REQUIRE(ssh);
  CHECK(ssh->backend == "ssh");
  CHECK(ssh->worker.rfind("ssh-", 0) == 0);
  CHECK(ssh->port == 2222);
}

TEST_CASE("host router: the local backend's names are its settings") {
  auto settings = settings_with_workers(2);
  settings.get<workers::LocalSettings>().hosts = {"daq-local"};
  const auto backends = workers::create_backends(settings);
  pm::ProcessMetadata metadata;
  CHECK(route_host(backends, "daq-local", metadata)->backend == "local");
  CHECK(route_host(backends, "localhost", metadata)->backend == "ssh");
}

TEST_CASE("host router: ports, v6 addresses, and the login from hosts.NAME, the metadata, then ssh") {
  auto settings = settings_with_workers(4);
  settings.get<workers::SshSettings>().hosts["special"] = {2200, "operator"};
  const auto backends = workers::create_backends(settings);
  pm::ProcessMetadata metadata;
  metadata.set_user("alice");

  const auto plain = route_host(backends, "np04-srv-001", metadata);
  REQUIRE(plain);
  CHECK(plain->host == "np04-srv-001");
  CHECK(plain->port == 22);
  CHECK(plain->user == "alice");

  const auto special = route_host(backends, "special", metadata);
  REQUIRE(special);
  CHECK(special->port == 2200);
  CHECK(special->user == "operator");
  CHECK(route_host(backends, "special:2300", metadata)->port == 2300);

  const auto v6 = route_host(backends, "[fe80::1]:2222", metadata);
  REQUIRE(v6);
  CHECK(v6->host == "fe80::1");
  CHECK(v6->port == 2222);
  const auto bare_v6 = route_host(backends, "fe80::2", metadata);
  REQUIRE(bare_v6);
  CHECK(bare_v6->host == "fe80::2");
  CHECK(bare_v6->port == 22);

  metadata.clear_user();
  CHECK(route_host(backends, "np04-srv-001", metadata)->user == "daq");
}

TEST_CASE("host router: a host always goes to the same SSH worker") {
  const auto backends = backends_with_workers(4);
  pm::ProcessMetadata metadata;
  const auto first = route_host(backends, "np04-srv-001", metadata);
  for (int i = 0; i < 10; ++i) CHECK(route_host(backends, "np04-srv-001:22", metadata)->worker == first->worker);
}

TEST_CASE("host router: what is not a host routes nowhere") {
  const auto backends = backends_with_workers(2);
  pm::ProcessMetadata metadata;
  for (const char* junk : {"", "127.0.0.2:2222x", "127.0.0.2:2222; rm -rf /", "host:+2222", "localhost: 1", "[::1]:22x",
                           "[::1", "[::1]x", "a b", ":22"})
    CHECK_FALSE(route_host(backends, junk, metadata));
}

TEST_CASE("host router: each entry goes to the first backend of the table that serves it, in allowed_hosts order") {
  auto backends = backends_with_workers(2);
  backends.push_back({"test", std::make_shared<PrefixBackend>()});
  pm::ProcessRestriction restriction;
  for (const char* host : {"test:a", "localhost", "daq-01", "not a host", "test:"}) restriction.add_allowed_hosts(host);
  const auto routes = route_hosts(backends, restriction.allowed_hosts(), {});
  REQUIRE(routes.size() == 5);
  CHECK(routes[0].first == "test:a");
  CHECK(routes[0].second->backend == "test");
  CHECK(routes[0].second->host == "a");
  CHECK(routes[1].second->backend == "local");
  CHECK(routes[2].second->backend == "ssh");
  CHECK_FALSE(routes[3].second);
  CHECK(routes[4].second->backend == "test");  // after ssh in this table: ssh does not take "test:"
}

TEST_CASE("host router: backends may not share a worker name") {
  auto settings = settings_with_workers(2);
  settings.entries.push_back(settings.entries.front());  // a second "local"
  CHECK_THROWS_AS(workers::create_backends(settings), workers::ConfigError);
}

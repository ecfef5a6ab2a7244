// From allowed_hosts entries to workers, hosts, ports and logins (broker/host_router.hpp).
#include <catch2/catch.hpp>

#include "host_router.hpp"

using namespace drunc::broker;
namespace pm = dunedaq::druncschema;

namespace {

Config config_with_workers(int workers) {
  Config config;
  config.ssh.workers = workers;
  config.ssh.default_port = 22;
  config.ssh.default_user = "daq";
  return config;
}

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
  for (const char* hostile : {"a;rm -rf /", "a b", "a'b", "$(id)", "a\nb", "`id`"}) CHECK_FALSE(plausible_host_name(hostile));
}

TEST_CASE("host router: local names without a port go to the local launcher") {
  const Config config = config_with_workers(4);
  pm::ProcessMetadata metadata;
  for (const char* local : {"localhost", "127.0.0.1", "::1"}) {
    const auto route = route_host(config, local, metadata);
    REQUIRE(route);
    CHECK(route->worker == kLocalWorker);
    CHECK(route->host == local);
  }
  // With a port: an SSH server on this machine.
  const auto ssh = route_host(config, "localhost:2222", metadata);
  REQUIRE(ssh);
  CHECK(ssh->worker.rfind("ssh-", 0) == 0);
  CHECK(ssh->port == 2222);
}

TEST_CASE("host router: ports, v6 addresses, and the login from hosts.NAME, the metadata, then ssh") {
  Config config = config_with_workers(4);
  config.hosts["special"] = Config::Host{2200, "operator"};
  pm::ProcessMetadata metadata;
  metadata.set_user("alice");

  const auto plain = route_host(config, "np04-srv-001", metadata);
  REQUIRE(plain);
  CHECK(plain->host == "np04-srv-001");
  CHECK(plain->port == 22);
  CHECK(plain->user == "alice");

  const auto special = route_host(config, "special", metadata);
  REQUIRE(special);
  CHECK(special->port == 2200);
  CHECK(special->user == "operator");
  CHECK(route_host(config, "special:2300", metadata)->port == 2300);

  const auto v6 = route_host(config, "[fe80::1]:2222", metadata);
  REQUIRE(v6);
  CHECK(v6->host == "fe80::1");
  CHECK(v6->port == 2222);
  const auto bare_v6 = route_host(config, "fe80::2", metadata);
  REQUIRE(bare_v6);
  CHECK(bare_v6->host == "fe80::2");
  CHECK(bare_v6->port == 22);

  metadata.clear_user();
  CHECK(route_host(config, "np04-srv-001", metadata)->user == "daq");
}

TEST_CASE("host router: a host always goes to the same SSH worker") {
  const Config config = config_with_workers(4);
  pm::ProcessMetadata metadata;
  const auto first = route_host(config, "np04-srv-001", metadata);
  for (int i = 0; i < 10; ++i) CHECK(route_host(config, "np04-srv-001:22", metadata)->worker == first->worker);
}

TEST_CASE("host router: what is not a host routes nowhere") {
  const Config config = config_with_workers(2);
  pm::ProcessMetadata metadata;
  for (const char* junk : {"", "127.0.0.2:2222x", "127.0.0.2:2222; rm -rf /", "host:+2222", "localhost: 1",
                           "[::1]:22x", "[::1", "[::1]x", "a b", ":22"})
    CHECK_FALSE(route_host(config, junk, metadata));
}

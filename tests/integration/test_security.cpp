// CURVE security (docs/PROTOCOL.md, section 7) on a real broker with real
// keys: who gets in, what each role may do, refusals as answers or clear
// client errors, SIGHUP reloads, and the safe defaults at start.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include "config.hpp"
#include "drunc_zmq/events.pb.h"
#include "druncschema/broadcast.pb.h"
#include "fixture.hpp"
#include "wire/certificate.hpp"
#include "wire/topic.hpp"

using namespace test;
using drunc::client::CurveKeys;
using drunc::client::HandshakeError;
using drunc::client::ResponseError;
namespace fs = std::filesystem;

namespace {

// A directory of keys: the server's pair in it, admitted clients' public
// certificates in clients/, every client's secret certificate in it.
class Keys {
 public:
  Keys() : root_(fs::temp_directory_path() / unique_marker("drunc-keys")) {
    fs::create_directories(root_ / "clients");
    write("server", {});
  }
  ~Keys() { fs::remove_all(root_); }

  // A key pair NAME.key / NAME.key_secret; admitted: its public certificate goes to clients/.
  void add(const std::string& name, const std::string& role, const std::string& sessions, bool admitted = true) {
    write(name, {{"user", name}, {"role", role}, {"sessions", sessions}});
    if (admitted) admit(name);
  }
  void admit(const std::string& name) { fs::copy_file(path(name + ".key"), clients() + "/" + name + ".key"); }
  void revoke(const std::string& name) { fs::remove(clients() + "/" + name + ".key"); }

  CurveKeys of(const std::string& name) const {
    return drunc::client::load_curve_keys(path(name + ".key_secret"), path("server.key"));
  }
  std::string path(const std::string& file) const { return (root_ / file).string(); }
  std::string clients() const { return (root_ / "clients").string(); }

  void configure(drunc::broker::Config& config) const {
    config.security.mode = drunc::broker::SecuritySettings::Mode::curve;
    config.security.server_certificate = path("server.key_secret");
    config.security.client_certificates = clients();
  }

 private:
  void write(const std::string& name, std::map<std::string, std::string> metadata) {
    drunc::wire::write_certificate_pair(drunc::wire::generate_certificate(std::move(metadata)), path(name + ".key"));
  }
  fs::path root_;
};

// A broker with CURVE and these keys: admin (every session), alice (operator
// of session A), olive (observer), mallory (not admitted).
class SecureBroker {
 public:
  SecureBroker() {
    spdlog::set_level(spdlog::level::warn);
    keys.add("admin", "admin", "*");
    keys.add("alice", "operator", "A");
    keys.add("olive", "observer", "*");
    keys.add("mallory", "admin", "*", /*admitted=*/false);
    drunc::broker::Config config;
    config.name = "secure-pm";
    config.control_endpoint = "tcp://127.0.0.1:*";
    config.events_endpoint = "tcp://127.0.0.1:*";
    keys.configure(config);
    broker = std::make_unique<drunc::broker::Broker>(config);
  }
  drunc::client::Client client(const std::string& name, std::chrono::milliseconds timeout = kPatience) const {
    return drunc::client::Client(broker->control_endpoint(), timeout, keys.of(name));
  }

  Keys keys;
  std::unique_ptr<drunc::broker::Broker> broker;
};

pm::ResponseFlag flag_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const ResponseError& error) {
    return error.flag();
  }
  return pm::EXECUTED_SUCCESSFULLY;
}

std::string refusal_text(const std::function<void()>& call) {
  try {
    call();
  } catch (const ResponseError& error) {
    CHECK(error.flag() == pm::NOT_EXECUTED_NOT_AUTHORISED);
    return error.text();
  }
  FAIL("the request was not refused");
  return {};
}

// A process whose command line carries marker, to look for it in /proc.
pm::BootRequest marked_sleep(const std::string& name, const std::string& session, const std::string& marker) {
  return boot_request(name, "bash", {"-c", "sleep 300; true " + marker}, session);
}

}  // namespace

TEST_CASE("security: an unlisted key is refused at the handshake, the client says so at once, nothing is read") {
  SecureBroker secure;
  const auto marker = unique_marker("unlisted");
  auto mallory = secure.client("mallory");
  const auto started = std::chrono::steady_clock::now();
  try {
    mallory.boot(marked_sleep("intruder", "A", marker));
    FAIL("an unlisted key was answered");
  } catch (const HandshakeError& error) {
    CHECK_THAT(error.what(), Catch::Contains("refused this key"));
  }
  CHECK(std::chrono::steady_clock::now() - started < kPatience / 2);
  auto admin = secure.client("admin");
  CHECK(admin.ps().values_size() == 0);
  CHECK(processes_with_marker(marker).empty());
}

TEST_CASE("security: a wrong server key and a client without keys get clear errors") {
  SecureBroker secure;
  auto keys = secure.keys.of("alice");
  keys.server_key = secure.keys.of("olive").public_key;  // not the broker's
  drunc::client::Client wrong_server(secure.broker->control_endpoint(), kPatience, keys);
  CHECK_THROWS_WITH(wrong_server.describe(), Catch::Contains("server key"));

  drunc::client::Client no_keys(secure.broker->control_endpoint(), kPatience);
  CHECK_THROWS_WITH(no_keys.describe(), Catch::Contains("requires CURVE"));
}

TEST_CASE("security: a server key file whose path is 40 characters is read as a file, not as Z85 text") {
  // Every character of such a path is in the Z85 alphabet, so it decodes as a key.
  const std::string name = unique_marker("k").substr(0, 24);
  const fs::path directory = fs::path("/tmp") / (name + std::string(24 - name.size(), 'x'));
  const std::string server_key = (directory / "server.key").string();
  REQUIRE(server_key.size() == 40);
  fs::create_directories(directory);
  const auto server = drunc::wire::generate_certificate({});
  drunc::wire::write_certificate_pair(server, server_key);
  const auto client = drunc::wire::generate_certificate({{"user", "alice"}});
  drunc::wire::write_certificate_pair(client, (directory / "alice.key").string());

  const auto keys = drunc::client::load_curve_keys((directory / "alice.key_secret").string(), server_key);
  fs::remove_all(directory);
  CHECK(keys.server_key == server.public_key);
  CHECK(keys.user == "alice");
}

TEST_CASE("security: an observer lists and reads but may not boot -- nothing is started") {
  SecureBroker secure;
  auto olive = secure.client("olive");
  const auto marker = unique_marker("observer");
  const auto text = refusal_text([&] { olive.boot(marked_sleep("app", "A", marker)); });
  CHECK_THAT(text, Catch::Contains("olive") && Catch::Contains("boot"));
  CHECK(processes_with_marker(marker).empty());
  auto admin = secure.client("admin");
  CHECK(admin.ps().values_size() == 0);
  CHECK(olive.describe().name() == "secure-pm");
  CHECK(olive.ps().values_size() == 0);
}

TEST_CASE("security: an operator acts on its own sessions only -- a query reaching another session acts on none") {
  SecureBroker secure;
  auto admin = secure.client("admin");
  auto alice = secure.client("alice");
  const auto in_a = boot(alice, boot_request("a-app", "sleep", {"300"}, "A"));
  const auto in_b = boot(admin, boot_request("b-app", "sleep", {"300"}, "B"));

  CHECK_THAT(refusal_text([&] { alice.boot(boot_request("sneaky", "sleep", {"300"}, "B")); }),
             Catch::Contains("alice") && Catch::Contains("boot") && Catch::Contains("\"B\""));
  CHECK_THAT(refusal_text([&] { alice.kill(query_session("B")); }),
             Catch::Contains("alice") && Catch::Contains("kill") && Catch::Contains("\"B\""));
  // Matching both sessions: neither is touched.
  CHECK_THAT(refusal_text([&] { alice.kill(query_name(".*-app")); }), Catch::Contains("\"B\""));
  CHECK(flag_of([&] { alice.restart(query_uuid(in_b)); }) == pm::NOT_EXECUTED_NOT_AUTHORISED);
  CHECK(flag_of([&] { alice.flush(query_uuid(in_b)); }) == pm::NOT_EXECUTED_NOT_AUTHORISED);
  CHECK(flag_of([&] { log_lines(alice, in_b); }) == pm::NOT_EXECUTED_NOT_AUTHORISED);
  CHECK(flag_of([&] { alice.terminate(); }) == pm::NOT_EXECUTED_NOT_AUTHORISED);

  const auto all = admin.ps();
  REQUIRE(all.values_size() == 2);
  for (const auto& instance : all.values()) CHECK(instance.status_code() == pm::ProcessInstance::RUNNING);
  const auto seen = alice.ps();  // only session A
  REQUIRE(seen.values_size() == 1);
  CHECK(seen.values(0).uuid().uuid() == in_a);

  const auto killed = alice.kill(query_session("A"));
  REQUIRE(killed.values_size() == 1);
  CHECK(killed.values(0).uuid().uuid() == in_a);
  CHECK(admin.terminate().values_size() == 2);
}

TEST_CASE("security: a token naming another user is refused, and responses echo the token") {
  SecureBroker secure;
  auto alice = secure.client("alice");
  pm::Token token;
  token.set_user_name("bob");
  token.set_token("t-123");
  alice.set_token(token);
  const auto id = alice.send(drunc::wire::Command::ps, nullptr);
  const auto reply = alice.wait(id, kPatience);
  CHECK(reply.response.flag() == pm::NOT_EXECUTED_NOT_AUTHORISED);
  CHECK_THAT(error_text(reply.response), Catch::Contains("bob") && Catch::Contains("alice"));
  CHECK(reply.response.token().user_name() == "bob");
  CHECK(reply.response.token().token() == "t-123");

  token.set_user_name("alice");
  alice.set_token(token);
  const auto accepted = alice.wait(alice.send(drunc::wire::Command::describe, nullptr), kPatience);
  CHECK(accepted.response.flag() == pm::EXECUTED_SUCCESSFULLY);
  CHECK(accepted.response.token().token() == "t-123");
}

TEST_CASE("security: SIGHUP's reload refuses a removed key from its next request, admits an added one") {
  SecureBroker secure;
  auto alice = secure.client("alice");
  auto admin = secure.client("admin");
  CHECK(alice.ps().values_size() == 0);

  secure.keys.revoke("alice");
  secure.broker->reload();
  // The reload reaches the broker thread by its own socket: poll with real requests until it has.
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  pm::ResponseFlag flag = pm::EXECUTED_SUCCESSFULLY;
  while (flag == pm::EXECUTED_SUCCESSFULLY && std::chrono::steady_clock::now() < deadline)
    flag = flag_of([&] { alice.ps(); });
  CHECK(flag == pm::NOT_EXECUTED_NOT_AUTHORISED);
  CHECK(admin.ps().values_size() == 0);  // undisturbed
  auto alice_again = secure.client("alice");
  CHECK_THROWS_AS(alice_again.describe(), HandshakeError);

  secure.keys.add("newcomer", "operator", "A");
  secure.broker->reload();
  bool admitted = false;
  while (!admitted && std::chrono::steady_clock::now() < deadline) {
    try {
      auto newcomer = secure.client("newcomer", std::chrono::seconds(2));
      newcomer.describe();
      admitted = true;
    } catch (const HandshakeError&) {
    }
  }
  CHECK(admitted);
}

TEST_CASE(
    "security: only listed subscribers receive events, and state-changing requests are announced with their user") {
  SecureBroker secure;
  auto admin = secure.client("admin");
  drunc::client::Subscriber listed(secure.broker->events_endpoint(), {""}, secure.keys.of("olive"));
  REQUIRE(listed.wait_until_live(admin, kPatience));
  drunc::client::Subscriber unlisted(secure.broker->events_endpoint(), {""}, secure.keys.of("mallory"));

  auto alice = secure.client("alice");
  const auto uuid = boot(alice, boot_request("announced", "sleep", {"300"}, "A"));
  bool announced = false, booted = false;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!(announced && booted) && std::chrono::steady_clock::now() < deadline) {
    auto event = listed.next(std::chrono::milliseconds(500));
    if (!event) continue;
    pm::BroadcastMessage broadcast;
    pm::CommandNotificationMessage notification;
    if (event->topic.rfind("bcast/", 0) == 0 && broadcast.ParseFromString(event->payload) &&
        broadcast.type() == pm::COMMAND_EXECUTION_START && broadcast.data().UnpackTo(&notification))
      announced = notification.user() == "alice" && notification.command() == "boot";
    pm::ProcessInstance instance;
    if (event->topic.rfind("state/", 0) == 0 && instance.ParseFromString(event->payload))
      booted = booted || instance.uuid().uuid() == uuid;
  }
  CHECK(announced);
  CHECK(booted);
  // The unlisted subscriber never got a connection: its monitor says why, and no event came.
  CHECK_THROWS_AS(unlisted.next(kPatience), HandshakeError);
}

TEST_CASE("security: a subscriber limited to some sessions receives only their log and state events") {
  SecureBroker secure;
  auto admin = secure.client("admin");
  auto alice = secure.client("alice");
  drunc::client::Subscriber everything(secure.broker->events_endpoint(), {""}, secure.keys.of("admin"));
  REQUIRE(everything.wait_until_live(admin, kPatience));
  drunc::client::Subscriber limited(secure.broker->events_endpoint(), {"", "log/B/"}, secure.keys.of("alice"));
  REQUIRE(limited.wait_until_live(alice, kPatience));

  // B's line is published first: had it been granted, it would reach alice before A's.
  const auto in_b = boot(admin, boot_request("b-talker", "echo", {"b-line"}, "B"));
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  bool b_seen = false;
  while (!b_seen && std::chrono::steady_clock::now() < deadline) {
    auto event = everything.next(std::chrono::milliseconds(500));
    pm::LogLine line;
    b_seen = event && event->topic.rfind("log/B/", 0) == 0 && line.ParseFromString(event->payload) &&
             line.line() == "b-line";
  }
  REQUIRE(b_seen);
  boot(alice, boot_request("a-talker", "echo", {"a-line"}, "A"));
  bool a_seen = false;
  while (!a_seen && std::chrono::steady_clock::now() < deadline) {
    auto event = limited.next(std::chrono::milliseconds(500));
    if (!event) continue;
    CHECK(event->topic.rfind("log/B/", 0) != 0);
    CHECK(event->topic.rfind("state/B/", 0) != 0);
    pm::LogLine line;
    a_seen = event->topic.rfind("log/A/", 0) == 0 && line.ParseFromString(event->payload) && line.line() == "a-line";
  }
  CHECK(a_seen);
  CHECK(in_b.size() > 0);
}

TEST_CASE("security: an endpoint reachable from the network needs CURVE or an explicit allowance") {
  auto insecure = [](bool allow) {
    return [allow](drunc::broker::Config& config) {
      config.control_endpoint = "tcp://0.0.0.0:*";
      config.security.allow_insecure_network = allow;
    };
  };
  try {
    TestBroker refused(insecure(false));
    FAIL("an insecure network bind was allowed");
  } catch (const drunc::broker::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::Contains("control_endpoint") && Catch::Contains("security.mode") &&
                                 Catch::Contains("allow_insecure_network"));
  }
  TestBroker allowed(insecure(true));
  const auto port = allowed.control_endpoint().substr(allowed.control_endpoint().rfind(':'));
  drunc::client::Client client("tcp://127.0.0.1" + port, kPatience);
  drunc_zmq::EventFeed feed;
  REQUIRE(client.describe().broadcast().UnpackTo(&feed));
  CHECK(feed.security_mode() == "none");
  CHECK(feed.insecure_network_allowed());
}

TEST_CASE("security: ipc socket files are private to the broker's user") {
  const auto directory = fs::temp_directory_path() / unique_marker("drunc-ipc");
  fs::create_directories(directory);
  {
    TestBroker broker([&](drunc::broker::Config& config) {
      config.control_endpoint = "ipc://" + (directory / "control").string();
      config.events_endpoint = "ipc://" + (directory / "events").string();
    });
    for (const char* name : {"control", "events"}) {
      struct stat status {};
      REQUIRE(::stat((directory / name).c_str(), &status) == 0);
      CHECK((status.st_mode & 0777) == 0600);
    }
    auto client = broker.client();
    CHECK(client.describe().name() == "test-pm");
  }
  fs::remove_all(directory);
}

TEST_CASE("security: a secret certificate others may read is refused at start, naming the file") {
  Keys keys;
  ::chmod(keys.path("server.key_secret").c_str(), 0644);
  try {
    TestBroker broker([&](drunc::broker::Config& config) { keys.configure(config); });
    FAIL("a readable secret key was accepted");
  } catch (const drunc::broker::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::Contains(keys.path("server.key_secret")) && Catch::Contains("0644"));
  }
}

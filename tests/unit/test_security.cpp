// Security's pure logic: certificate files as zcert and zmq.auth write them,
// the admitted-keys directory, roles, and which endpoints count as local.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "config.hpp"
#include "security.hpp"
#include "wire/certificate.hpp"

using namespace drunc;
using drunc::wire::Command;
namespace fs = std::filesystem;

namespace {

const std::string kPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const std::string kSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("drunc-unit-keys-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) const {
    const auto file = (path / name).string();
    std::ofstream(file) << text;
    ::chmod(file.c_str(), mode);
    return file;
  }
};

}  // namespace

TEST_CASE("certificates: pyzmq's format (bare metadata values, quoted keys) and CZMQ's (quoted values)") {
  const auto pyzmq = wire::parse_certificate(
      "#   ****  Generated on 2026-12-02 by pyzmq  ****\n#   ZeroMQ CURVE **Secret** Certificate\n\n"
      "metadata\n    user = alice\n    sessions = A,B\ncurve\n    public-key = \"" +
          kPublic + "\"\n    secret-key = \"" + kSecret + "\"\n",
      "alice.key_secret");
  CHECK(pyzmq.public_key == kPublic);
  CHECK(pyzmq.secret_key == kSecret);
  CHECK(pyzmq.metadata.at("user") == "alice");
  CHECK(pyzmq.metadata.at("sessions") == "A,B");

  const auto czmq = wire::parse_certificate(
      "metadata\n    role = \"admin\"   # comment\ncurve\n    public-key = '" + kPublic + "'\n", "bob");
  CHECK(czmq.public_key == kPublic);
  CHECK(czmq.secret_key.empty());
  CHECK(czmq.metadata.at("role") == "admin");
}

TEST_CASE("certificates: a file without a valid key is refused, naming it") {
  CHECK_THROWS_WITH(wire::parse_certificate("metadata\ncurve\n", "empty.key"), Catch::Contains("empty.key"));
  CHECK_THROWS_WITH(wire::parse_certificate("curve\n    public-key = \"short\"\n", "short.key"),
                    Catch::Contains("Z85"));
}

TEST_CASE("certificates: what generate and write produce reads back -- the secret file is private") {
  TempDir dir;
  const auto certificate = wire::generate_certificate({{"user", "carol"}, {"role", "operator"}});
  const auto path = (dir.path / "carol.key").string();
  wire::write_certificate_pair(certificate, path);
  const auto public_part = wire::read_certificate(path);
  CHECK(public_part.public_key == certificate.public_key);
  CHECK(public_part.secret_key.empty());
  CHECK(public_part.metadata.at("role") == "operator");
  const auto secret_part = wire::read_certificate(path + "_secret");
  CHECK(secret_part.secret_key == certificate.secret_key);
  struct stat status {};
  REQUIRE(::stat((path + "_secret").c_str(), &status) == 0);
  CHECK((status.st_mode & 0777) == 0600);
  CHECK_THROWS_WITH(wire::write_certificate_pair(certificate, path), Catch::Contains("exists already"));

  ::chmod((path + "_secret").c_str(), 0640);
  CHECK_THROWS_WITH(wire::read_certificate(path + "_secret"),
                    Catch::Contains(path + "_secret") && Catch::Contains("chmod 600"));
}

TEST_CASE("admitted keys: roles, sessions, defaults, and a zmq.auth pair whose metadata is only in the secret file") {
  TempDir dir;
  const auto other = wire::generate_certificate({});
  dir.write("op.key",
            "metadata\n    user = \"dave\"\n    role = \"operator\"\n    sessions = \"A, B\"\ncurve\n"
            "    public-key = \"" +
                kPublic + "\"\n");
  dir.write("plain.key", "metadata\ncurve\n    public-key = \"" + other.public_key + "\"\n");
  // zmq.auth: the public file has no metadata, its secret twin has it.
  const auto zmq_auth = wire::generate_certificate({});
  dir.write("erin.key", "metadata\ncurve\n    public-key = \"" + zmq_auth.public_key + "\"\n");
  dir.write("erin.key_secret",
            "metadata\n    user = erin\n    role = admin\ncurve\n    public-key = \"" + zmq_auth.public_key +
                "\"\n    secret-key = \"" + zmq_auth.secret_key + "\"\n",
            0600);
  dir.write(".hidden", "not a certificate");

  const auto list = broker::load_access_list(dir.path.string());
  REQUIRE(list.size() == 3);
  const auto& dave = list.at(kPublic);
  CHECK(dave.user == "dave");
  CHECK(dave.role == broker::Role::operator_);
  CHECK(dave.may_touch("A"));
  CHECK(dave.may_touch("B"));
  CHECK_FALSE(dave.may_touch("C"));
  const auto& plain = list.at(other.public_key);
  CHECK(plain.user == "plain");
  CHECK(plain.role == broker::Role::observer);
  CHECK(plain.may_touch("anything"));
  CHECK(list.at(zmq_auth.public_key).role == broker::Role::admin);
  CHECK(list.at(zmq_auth.public_key).user == "erin");

  dir.write("bad.key", "metadata\n    role = \"king\"\ncurve\n    public-key = \"" +
                           wire::generate_certificate({}).public_key + "\"\n");
  CHECK_THROWS_WITH(broker::load_access_list(dir.path.string()),
                    Catch::Contains("bad.key") && Catch::Contains("observer, operator or admin"));
  CHECK_THROWS_WITH(broker::load_access_list("/nonexistent/drunc"), Catch::Contains("security.client_certificates"));
}

TEST_CASE("roles: observers read, operators also act, only admins terminate") {
  using broker::Role;
  for (auto command : {Command::describe, Command::ps, Command::logs})
    for (auto role : {Role::observer, Role::operator_, Role::admin}) CHECK(broker::role_allows(role, command));
  for (auto command : {Command::boot, Command::kill, Command::restart, Command::flush}) {
    CHECK_FALSE(broker::role_allows(Role::observer, command));
    CHECK(broker::role_allows(Role::operator_, command));
    CHECK(broker::role_allows(Role::admin, command));
    CHECK(broker::changes_state(command));
  }
  CHECK_FALSE(broker::role_allows(Role::operator_, Command::terminate));
  CHECK(broker::role_allows(Role::admin, Command::terminate));
  CHECK_FALSE(broker::changes_state(Command::ps));
}

TEST_CASE("endpoints: loopback, ipc and inproc are local -- wildcards, interfaces and names are not") {
  for (const char* local : {"tcp://127.0.0.1:5555", "tcp://127.1.2.3:*", "tcp://[::1]:5555", "tcp://localhost:5555",
                            "ipc:///tmp/pm", "ipc://@abstract", "inproc://x"})
    CHECK(broker::is_local_endpoint(local));
  for (const char* network :
       {"tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://eth0:5555", "tcp://192.168.1.4:5555", "tcp://[::]:5555",
        "tcp://daq-pm.example.org:5555", "ws://127.0.0.1:80", "udp://127.0.0.1:5555", "tcp://127.0.0.1"})
    CHECK_FALSE(broker::is_local_endpoint(network));
}

TEST_CASE("config: the security section and its errors") {
  const auto config = broker::parse_config(
      R"({"security": {"mode": "curve", "server_certificate": "/k/server.key_secret", "client_certificates": "/k/clients"}})",
      "test");
  CHECK(config.security.mode == broker::SecuritySettings::Mode::curve);
  CHECK(config.security.server_certificate == "/k/server.key_secret");
  CHECK(broker::default_config().security.mode == broker::SecuritySettings::Mode::none);
  CHECK_THROWS_WITH(broker::parse_config(R"({"security": {"mode": "curve"}})", "test"),
                    Catch::Contains("security.server_certificate"));
  CHECK_THROWS_WITH(broker::parse_config(R"({"security": {"mode": "tls"}})", "test"), Catch::Contains("security.mode"));
  CHECK_THROWS_WITH(broker::parse_config(R"({"security": {"allow": true}})", "test"),
                    Catch::Contains("security.allow"));
}

TEST_CASE("feed: a subscription is narrowed to the sessions of the subscriber's certificate") {
  broker::ClientIdentity everyone;
  everyone.all_sessions = true;
  CHECK(broker::granted_prefixes(everyone, "") == std::vector<std::string>{""});
  CHECK(broker::granted_prefixes(everyone, "log/B/") == std::vector<std::string>{"log/B/"});

  broker::ClientIdentity limited;
  limited.sessions = {"A", "x/y"};
  CHECK(broker::granted_prefixes(limited, "") ==
        std::vector<std::string>{"bcast/", "log/A/", "state/A/", "log/x%2Fy/", "state/x%2Fy/"});
  CHECK(broker::granted_prefixes(limited, "log/") == std::vector<std::string>{"log/A/", "log/x%2Fy/"});
  CHECK(broker::granted_prefixes(limited, "log/A/run") == std::vector<std::string>{"log/A/run"});
  CHECK(broker::granted_prefixes(limited, "state/B/").empty());
  CHECK(broker::granted_prefixes(limited, "log/AB/").empty());  // not session A
  CHECK(broker::granted_prefixes(limited, "bcast/").size() == 1);
}

#include <catch2/catch.hpp>

#include <unistd.h>

#include "config.hpp"
#include "local/local_backend.hpp"
#include "ssh/ssh_backend.hpp"

using namespace drunc::broker;
using drunc::workers::LocalSettings;
using drunc::workers::SshSettings;

TEST_CASE("the built-in configuration is config/broker.json and gives the documented defaults") {
  const Config config = default_config();
  CHECK(config.name == "drunc-zmq");
  CHECK(config.session.empty());
  CHECK(config.control_endpoint == "tcp://127.0.0.1:5555");
  CHECK(config.events_endpoint == "tcp://127.0.0.1:5556");
  CHECK(config.kill_timeout == std::chrono::milliseconds(500));
  CHECK(config.log_ring_lines == 1000);
  CHECK(config.max_message_bytes == 1048576);
  CHECK(config.log_level == "info");
}

TEST_CASE("keys not given keep their defaults: this machine's hostname is always local") {
  const Config config = parse_config(R"({"name": "pm-7", "kill_timeout_s": 2.25})", "test");
  CHECK(config.name == "pm-7");
  CHECK(config.kill_timeout == std::chrono::milliseconds(2250));
  CHECK(config.control_endpoint == "tcp://127.0.0.1:5555");
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  const auto& local_hosts = config.backends.get<LocalSettings>().hosts;
  CHECK(std::find(local_hosts.begin(), local_hosts.end(), hostname) != local_hosts.end());
  CHECK(std::find(local_hosts.begin(), local_hosts.end(), "localhost") != local_hosts.end());
}

TEST_CASE("on_broker_exit: kill by default, keep with a journal directory") {
  const Config defaults = default_config();
  CHECK(defaults.on_broker_exit == OnBrokerExit::kill);
  CHECK(defaults.journal_directory.empty());
  const Config keep = parse_config(R"({"on_broker_exit": "keep", "journal_directory": "/var/lib/drunc"})", "test");
  CHECK(keep.on_broker_exit == OnBrokerExit::keep);
  CHECK(keep.journal_directory == "/var/lib/drunc");
  CHECK(parse_config(R"({"on_broker_exit": "kill"})", "test").on_broker_exit == OnBrokerExit::kill);
}

TEST_CASE("each backend reads backends.NAME, or its keys from before backends existed") {
  const Config legacy = parse_config(R"({"local_hosts": ["here"], "hosts": {"daq-01": {"port": 2222}},
                                         "ssh": {"workers": 3, "user": "daq"}})",
                                     "test");
  const Config sections = parse_config(R"({"backends": {"local": {"hosts": ["here"]},
                                           "ssh": {"workers": 3, "user": "daq", "hosts": {"daq-01": {"port": 2222}}}}})",
                                       "test");
  for (const Config* config : {&legacy, &sections}) {
    CHECK(config->backends.get<LocalSettings>().hosts.front() == "here");
    const auto& ssh = config->backends.get<SshSettings>();
    CHECK(ssh.workers == 3);
    CHECK(ssh.default_user == "daq");
    CHECK(ssh.hosts.at("daq-01").port == 2222);
  }
  // The table's order: local first, ssh last.
  REQUIRE(legacy.backends.entries.size() == 2);
  CHECK(legacy.backends.entries.front().type.name == "local");
  CHECK(legacy.backends.entries.back().type.name == "ssh");
}

TEST_CASE("configuration errors name the setting") {
  auto error_of = [](const std::string& json) {
    try {
      parse_config(json, "f.json");
    } catch (const ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(R"({"nmae": "x"})"), Catch::Contains("unknown setting \"nmae\""));
  CHECK_THAT(error_of(R"({"kill_timeout_s": "fast"})"), Catch::Contains("kill_timeout_s") && Catch::Contains("number"));
  CHECK_THAT(error_of(R"({"kill_timeout_s": -1})"), Catch::Contains("kill_timeout_s"));
  CHECK_THAT(error_of(R"({"log_ring_lines": 0})"), Catch::Contains("log_ring_lines"));
  CHECK_THAT(error_of(R"({"log_ring_lines": 1.5})"), Catch::Contains("whole number"));
  CHECK_THAT(error_of(R"({"local_hosts": "localhost"})"), Catch::Contains("local_hosts"));
  CHECK_THAT(error_of(R"({"log_level": "loud"})"), Catch::Contains("log_level"));
  CHECK_THAT(error_of(R"({"name": ""})"), Catch::Contains("name"));
  CHECK_THAT(error_of(R"({"events_advertised_endpoint": "garbage"})"), Catch::Contains("events_advertised_endpoint"));
  CHECK_THAT(error_of("[1, 2]"), Catch::Contains("object"));
  CHECK_THAT(error_of("{not json"), Catch::Contains("f.json") && Catch::Contains("JSON"));
  CHECK_THAT(error_of(R"({"local_hosts": []})"), Catch::Contains("local_hosts") && Catch::Contains("at least one"));
  CHECK_THAT(error_of(R"({"ssh": {"key_files": ["/nonexistent/id_ed25519"]}})"),
             Catch::Contains("ssh.key_files") && Catch::Contains("/nonexistent/id_ed25519"));
  CHECK_THAT(error_of(R"({"ssh": {"known_hosts_files": ["/nonexistent/kh"], "host_key_policy": "strict"}})"),
             Catch::Contains("ssh.known_hosts_files") && Catch::Contains("/nonexistent/kh"));
  CHECK_THAT(error_of(R"({"ssh": {"accepted_hosts_file": "/etc/hostname/drunc/known_hosts"}})"),
             Catch::Contains("ssh.accepted_hosts_file") && Catch::Contains("cannot be written"));
  CHECK_THAT(error_of(R"({"on_broker_exit": "linger"})"), Catch::Contains("on_broker_exit"));
  CHECK_THAT(error_of(R"({"on_broker_exit": "keep"})"),
             Catch::Contains("journal_directory") && Catch::Contains("required"));
  CHECK_THAT(error_of(R"({"on_broker_exit": "keep", "journal_directory": ""})"), Catch::Contains("journal_directory"));
  CHECK_THAT(error_of(R"({"backends": {"kubernetes": {}}})"),
             Catch::Contains("unknown setting \"backends.kubernetes\""));
  CHECK_THAT(error_of(R"({"backends": []})"), Catch::Contains("backends"));
  CHECK_THAT(error_of(R"({"backends": {"ssh": {"wrokers": 2}}})"),
             Catch::Contains("unknown setting \"backends.ssh.wrokers\""));
  CHECK_THAT(error_of(R"({"backends": {"ssh": {"workers": 0}}})"), Catch::Contains("backends.ssh.workers"));
  CHECK_THAT(error_of(R"({"backends": {"local": {"hosts": []}}})"),
             Catch::Contains("backends.local.hosts") && Catch::Contains("at least one"));
  CHECK_THAT(error_of(R"({"backends": {"local": {"names": []}}})"),
             Catch::Contains("unknown setting \"backends.local.names\""));
  CHECK_THAT(error_of(R"({"backends": {"ssh": {"hosts": {"a": {"port": 0}}}}})"),
             Catch::Contains("backends.ssh.hosts.a.port"));
  CHECK_THAT(error_of(R"({"ssh": {"hosts": {}}})"), Catch::Contains("unknown setting \"ssh.hosts\""));
  CHECK_THAT(error_of(R"({"hosts": {"a": {"prot": 1}}})"), Catch::Contains("unknown setting \"hosts.a.prot\""));
  CHECK_THAT(error_of(R"({"local_hosts": ["x"], "backends": {"local": {"hosts": ["y"]}}})"),
             Catch::Contains("local_hosts") && Catch::Contains("not both"));
  CHECK_THAT(error_of(R"({"ssh": {}, "backends": {"ssh": {}}})"),
             Catch::Contains("\"ssh\"") && Catch::Contains("not both"));
  CHECK(error_of(R"({"ssh": {"known_hosts_files": ["/nonexistent/kh"], "host_key_policy": "accept-new",
                     "accepted_hosts_file": "/tmp/drunc-unit/sub/known_hosts"}})") == "no error");
}

// Found by fuzz_config: nlohmann::json throws out_of_range, not parse_error, on a
// number too large for a double, and it escaped parse_config, so drunc-broker
// exited 1 with a bare JSON message instead of 2 with a configuration error.
TEST_CASE("a number too large for a double is a configuration error naming the file") {
  for (const char* json : {R"({"kill_timeout_s": 1e400})", R"({"ssh": {"connect_timeout_s": -1e999}})",
                           R"({"log_ring_lines": 1E309})", R"({"unknown": 55E50000})"}) {
    INFO(json);
    try {
      parse_config(json, "f.json");
      FAIL("accepted");
    } catch (const ConfigError& error) {
      CHECK(std::string(error.what()).rfind("f.json: ", 0) == 0);
      CHECK(std::string(error.what()).find("out of range") != std::string::npos);
    }
  }
}

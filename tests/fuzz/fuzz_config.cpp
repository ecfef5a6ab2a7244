// Fuzz target: the broker configuration parser (broker/config.*, parse_config).
//
// Input: the text of a configuration file (JSON, comments allowed).
//
// Invariants: a configuration is either accepted or refused with ConfigError
// (which drunc-broker reports and exits on); no other exception escapes, and
// an accepted configuration holds only values within the documented ranges.
#include <cstdint>
#include <string>

#include "config.hpp"
#include "fuzz_check.hpp"
#include "ssh/ssh_settings.hpp"

using drunc::broker::Config;
using drunc::broker::ConfigError;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Config config;
  try {
    config = drunc::broker::parse_config(text, "fuzz input");
  } catch (const ConfigError& error) {
    FUZZ_CHECK(std::string(error.what()).rfind("fuzz input", 0) == 0);
    return 0;
  }
  FUZZ_CHECK(!config.name.empty());
  FUZZ_CHECK(!config.control_endpoint.empty() && !config.events_endpoint.empty());
  FUZZ_CHECK(config.kill_timeout.count() >= 0 && config.kill_timeout.count() <= 3'600'000);
  FUZZ_CHECK(config.log_ring_lines >= 1 && config.log_ring_lines <= 10'000'000);
  FUZZ_CHECK(config.max_message_bytes >= 1024 && config.max_message_bytes <= (std::int64_t{1} << 31));
  FUZZ_CHECK(config.events_high_water_mark >= 0 && config.events_high_water_mark <= 100'000'000);
  const auto& ssh = config.backends.get<drunc::workers::SshSettings>();
  FUZZ_CHECK(ssh.workers >= 1 && ssh.workers <= 64);
  FUZZ_CHECK(ssh.default_port >= 1 && ssh.default_port <= 65535);
  FUZZ_CHECK(ssh.connect_timeout.count() >= 100 && ssh.connect_timeout.count() <= 600'000);
  FUZZ_CHECK(ssh.keepalive_interval.count() >= 1000 && ssh.keepalive_interval.count() <= 3'600'000);
  FUZZ_CHECK(ssh.idle_close.count() >= 0 && ssh.idle_close.count() <= 86'400'000);
  FUZZ_CHECK(ssh.max_parallel_handshakes_per_host >= 1 && ssh.max_parallel_handshakes_per_host <= 100);
  for (const auto& [host, settings] : ssh.hosts) FUZZ_CHECK(settings.port >= 0 && settings.port <= 65535);
  return 0;
}

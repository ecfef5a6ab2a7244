// The broker's settings, read from a JSON file (docs/CONFIG.md lists every key).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "backend.hpp"
#include "security.hpp"
#include "settings_reader.hpp"

namespace drunc::broker {

// A setting that is unknown, of the wrong type or out of range. what() names it.
using workers::ConfigError;

// What becomes of the processes when the broker ends, however it ends (docs/CONFIG.md).
enum class OnBrokerExit {
  kill,  // every process dies with the broker, even on SIGKILL (the default)
  keep   // processes outlive it; a broker started again with the same journal_directory re-adopts them
};

struct Config {
  std::string name = "drunc-zmq";  // Response.name, Emitter.process
  std::string session;             // empty: no session ("no_session" in describe)
  std::string control_endpoint = "tcp://127.0.0.1:5555";
  std::string events_endpoint = "tcp://127.0.0.1:5556";
  std::string events_advertised_endpoint;          // empty: the bound events endpoint
  std::chrono::milliseconds kill_timeout{500};     // SIGQUIT -> SIGKILL
  std::size_t log_ring_lines = 1000;               // recent lines kept per process for `logs`
  std::int64_t max_message_bytes = 1 << 20;        // larger requests are refused by the socket
  std::int64_t max_unread_reply_bytes = 64 << 20;  // replies one client leaves unread before it is refused
  int events_high_water_mark = 100000;             // PUB messages queued per subscriber before dropping
  std::string log_level = "info";                  // spdlog level of the broker's own log
  SecuritySettings security;
  OnBrokerExit on_broker_exit = OnBrokerExit::kill;
  std::string journal_directory;  // required with keep: where the journal lives (broker/journal.hpp)
  // Each backend of the table with its settings (backends.NAME), in the
  // order hosts are offered to them: backends.get<workers::LocalSettings>() ...
  workers::BackendSettings backends = workers::BackendSettings::defaults();
};

// The default configuration: config/broker.json, embedded at build time.
Config default_config();
const char* default_config_json();

// Parses a configuration; keys not given keep their defaults. Each backend
// of table parses its own section. source names the origin in error
// messages (a path, "built-in default").
Config parse_config(const std::string& json_text, const std::string& source,
                    const workers::BackendTable& table = workers::backend_table());
Config load_config_file(const std::string& path, const workers::BackendTable& table = workers::backend_table());

}  // namespace drunc::broker

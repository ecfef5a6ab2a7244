#include "config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "default_config.hpp"  // generated from config/broker.json

namespace drunc::broker {
namespace {

using nlohmann::json;
using workers::expand_home;
using Reader = workers::SettingsReader;

SecuritySettings parse_security(const json& object, const std::string& source) {
  Reader read(object, source, "security.");
  read.only({"mode", "server_certificate", "client_certificates", "allow_insecure_network"});
  SecuritySettings security;
  std::string mode = "none";
  read.string("mode", mode, false);
  if (mode == "curve")
    security.mode = SecuritySettings::Mode::curve;
  else if (mode != "none")
    read.fail("mode", "must be \"none\" or \"curve\"");
  read.string("server_certificate", security.server_certificate, true);
  read.string("client_certificates", security.client_certificates, true);
  read.boolean("allow_insecure_network", security.allow_insecure_network);
  security.server_certificate = expand_home(security.server_certificate);
  security.client_certificates = expand_home(security.client_certificates);
  if (security.mode == SecuritySettings::Mode::curve) {
    if (security.server_certificate.empty())
      read.fail("server_certificate",
                "is required with mode \"curve\": the server's secret certificate file "
                "(drunc-pm keygen writes one)");
    if (security.client_certificates.empty())
      read.fail("client_certificates",
                "is required with mode \"curve\": a directory of the admitted clients' "
                "public certificates");
  }
  return security;
}

// The broker's own keys; "backends" and each backend's legacy keys come from the table.
const std::vector<std::string> kKnownKeys = {
    "name",           "session",        "control_endpoint",  "events_endpoint",        "events_advertised_endpoint",
    "kill_timeout_s", "log_ring_lines", "max_message_bytes", "max_unread_reply_bytes", "events_high_water_mark",
    "log_level",      "security",       "backends",          "on_broker_exit",         "journal_directory"};

// Each backend of table parses its section (backends.NAME) and its legacy keys.
workers::BackendSettings parse_backends(const json& document, const std::string& source,
                                        const workers::BackendTable& table) {
  const json* sections = nullptr;
  if (auto found = document.find("backends"); found != document.end()) {
    sections = &*found;
    if (!sections->is_object()) throw ConfigError(source + ": setting \"backends\" must be an object");
    for (const auto& item : sections->items()) {
      const std::string& name = item.key();
      if (std::none_of(table.begin(), table.end(), [&](const auto& type) { return type.name == name; }))
        throw ConfigError(source + ": unknown setting \"backends." + name + "\"");
    }
  }
  workers::BackendSettings settings;
  for (const auto& type : table) {
    const json* section = nullptr;
    if (sections)
      if (auto found = sections->find(type.name); found != sections->end()) section = &*found;
    settings.entries.push_back({type, type.parse({section, document, source})});
  }
  return settings;
}

const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

}  // namespace

const char* default_config_json() { return kDefaultConfigJson; }

Config default_config() { return parse_config(kDefaultConfigJson, "built-in default configuration"); }

Config parse_config(const std::string& json_text, const std::string& source, const workers::BackendTable& table) {
  json document;
  try {
    document = json::parse(json_text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& error) {
    throw ConfigError(source + ": not valid JSON: " + error.what());
  } catch (const json::out_of_range& error) {  // a number too large for a double (1e400)
    throw ConfigError(source + ": a number is out of range: " + error.what());
  }
  if (!document.is_object()) throw ConfigError(source + ": must be a JSON object of settings");
  for (const auto& item : document.items()) {
    const std::string& key = item.key();
    if (std::find(kKnownKeys.begin(), kKnownKeys.end(), key) == kKnownKeys.end() &&
        std::none_of(table.begin(), table.end(), [&key](const auto& type) {
          return std::find(type.legacy_keys.begin(), type.legacy_keys.end(), key) != type.legacy_keys.end();
        }))
      throw ConfigError(source + ": unknown setting \"" + key + "\"");
  }

  Reader read(document, source);
  Config config;
  read.string("name", config.name, false);
  read.string("session", config.session, true);
  read.string("control_endpoint", config.control_endpoint, false);
  read.string("events_endpoint", config.events_endpoint, false);
  read.string("events_advertised_endpoint", config.events_advertised_endpoint, true);
  if (!config.events_advertised_endpoint.empty() && config.events_advertised_endpoint.find("://") == std::string::npos)
    read.fail("events_advertised_endpoint", "must be a ZeroMQ endpoint such as tcp://host:5556");
  const double kill_timeout_s = read.number("kill_timeout_s", 0.5, 0.0, 3600.0);
  config.kill_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(kill_timeout_s * 1000.0 + 0.5));
  config.log_ring_lines = static_cast<std::size_t>(read.integer("log_ring_lines", 1000, 1, 10'000'000));
  config.max_message_bytes = read.integer("max_message_bytes", 1 << 20, 1024, std::int64_t{1} << 31);
  config.max_unread_reply_bytes =
      read.integer("max_unread_reply_bytes", std::int64_t{64} << 20, std::int64_t{1} << 16, std::int64_t{1} << 40);
  config.events_high_water_mark = static_cast<int>(read.integer("events_high_water_mark", 100000, 0, 100'000'000));
  read.string("log_level", config.log_level, false);
  if (std::find(kLogLevels.begin(), kLogLevels.end(), config.log_level) == kLogLevels.end())
    read.fail("log_level", "must be one of trace, debug, info, warn, error, critical, off");

  std::string on_exit = "kill";
  read.string("on_broker_exit", on_exit, false);
  if (on_exit == "keep")
    config.on_broker_exit = OnBrokerExit::keep;
  else if (on_exit != "kill")
    read.fail("on_broker_exit", "must be \"kill\" or \"keep\"");
  read.string("journal_directory", config.journal_directory, true);
  config.journal_directory = expand_home(config.journal_directory);
  if (config.on_broker_exit == OnBrokerExit::keep && config.journal_directory.empty())
    read.fail("journal_directory",
              "is required with on_broker_exit \"keep\": the directory where the broker journals its processes, "
              "so that a broker started again can re-adopt them");

  if (const json* security = read.find("security")) config.security = parse_security(*security, source);
  config.backends = parse_backends(document, source, table);
  return config;
}

Config load_config_file(const std::string& path, const workers::BackendTable& table) {
  std::ifstream file(path);
  if (!file) throw ConfigError(path + ": cannot be read");
  std::stringstream text;
  text << file.rdbuf();
  return parse_config(text.str(), path, table);
}

}  // namespace drunc::broker

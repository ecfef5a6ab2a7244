#include "config.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "default_config.hpp"  // generated from config/broker.json

namespace drunc::broker {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& document, std::string source) : document_(document), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw ConfigError(source_ + ": setting \"" + key + "\": " + message);
  }

  const json* find(const std::string& key) const {
    auto it = document_.find(key);
    return it == document_.end() ? nullptr : &*it;
  }

  void string(const std::string& key, std::string& target, bool allow_empty) const {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_string()) fail(key, "must be a string");
    target = value->get<std::string>();
    if (!allow_empty && target.empty()) fail(key, "must not be empty");
  }

  double number(const std::string& key, double fallback, double min, double max) const {
    const json* value = find(key);
    if (!value) return fallback;
    if (!value->is_number()) fail(key, "must be a number");
    const double number = value->get<double>();
    if (number < min || number > max)
      fail(key, "must be between " + format(min) + " and " + format(max) + ", got " + format(number));
    return number;
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
    const json* value = find(key);
    if (!value) return fallback;
    if (!value->is_number_integer()) fail(key, "must be a whole number");
    const auto number = value->get<std::int64_t>();
    if (number < min || number > max)
      fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                    std::to_string(number));
    return number;
  }

  void strings(const std::string& key, std::vector<std::string>& target) const {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_array()) fail(key, "must be a list of strings");
    target.clear();
    for (const auto& item : *value) {
      if (!item.is_string()) fail(key, "must be a list of strings");
      target.push_back(item.get<std::string>());
    }
  }

 private:
  static std::string format(double number) {
    std::ostringstream out;
    out << number;
    return out.str();
  }

  const json& document_;
  std::string source_;
};

const std::vector<std::string> kKnownKeys = {
    "name",          "session",        "control_endpoint",       "events_endpoint", "events_advertised_endpoint",
    "kill_timeout_s", "log_ring_lines", "max_message_bytes",      "events_high_water_mark",
    "local_hosts",   "log_level"};

const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

}  // namespace

const char* default_config_json() { return kDefaultConfigJson; }

Config default_config() { return parse_config(kDefaultConfigJson, "built-in default configuration"); }

Config parse_config(const std::string& json_text, const std::string& source) {
  json document;
  try {
    document = json::parse(json_text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& error) {
    throw ConfigError(source + ": not valid JSON: " + error.what());
  }
  if (!document.is_object()) throw ConfigError(source + ": must be a JSON object of settings");
  for (const auto& [key, value] : document.items())
    if (std::find(kKnownKeys.begin(), kKnownKeys.end(), key) == kKnownKeys.end())
      throw ConfigError(source + ": unknown setting \"" + key + "\"");

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
  config.events_high_water_mark = static_cast<int>(read.integer("events_high_water_mark", 100000, 0, 100'000'000));
  read.strings("local_hosts", config.local_hosts);
  read.string("log_level", config.log_level, false);
  if (std::find(kLogLevels.begin(), kLogLevels.end(), config.log_level) == kLogLevels.end())
    read.fail("log_level", "must be one of trace, debug, info, warn, error, critical, off");

  char hostname[256] = {};
  if (::gethostname(hostname, sizeof hostname - 1) == 0 && hostname[0] != '\0' &&
      std::find(config.local_hosts.begin(), config.local_hosts.end(), hostname) == config.local_hosts.end())
    config.local_hosts.emplace_back(hostname);
  return config;
}

Config load_config_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw ConfigError(path + ": cannot be read");
  std::stringstream text;
  text << file.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace drunc::broker

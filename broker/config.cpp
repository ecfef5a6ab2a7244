#include "config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "default_config.hpp"  // generated from config/broker.json

namespace drunc::broker {
namespace {

using nlohmann::json;

// Reads the settings of one JSON object; prefix names nested objects ("ssh.") in errors.
class Reader {
 public:
  Reader(const json& document, std::string source, std::string prefix = "")
      : document_(document), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw ConfigError(source_ + ": setting \"" + prefix_ + key + "\": " + message);
  }

  void only(const std::vector<std::string>& known) const {
    if (!document_.is_object()) throw ConfigError(source_ + ": setting \"" + prefix_ + "\" must be an object");
    for (const auto& [key, value] : document_.items())
      if (std::find(known.begin(), known.end(), key) == known.end())
        throw ConfigError(source_ + ": unknown setting \"" + prefix_ + key + "\"");
  }

  void boolean(const std::string& key, bool& target) const {
    const json* value = find(key);
    if (!value) return;
    if (!value->is_boolean()) fail(key, "must be true or false");
    target = value->get<bool>();
  }

  std::chrono::milliseconds seconds(const std::string& key, std::chrono::milliseconds fallback, double min,
                                    double max) const {
    const double value = number(key, fallback.count() / 1000.0, min, max);
    return std::chrono::milliseconds(static_cast<std::int64_t>(value * 1000.0 + 0.5));
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
  std::string prefix_;
};

// "~/x" -> "$HOME/x"
std::string expand_home(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + path.substr(1);
}

const std::vector<std::string> kSshKeys = {"workers",          "user",           "port",
                                           "key_files",        "use_agent",      "known_hosts_files",
                                           "accepted_hosts_file", "host_key_policy", "connect_timeout_s",
                                           "keepalive_interval_s", "idle_close_s", "max_parallel_handshakes_per_host"};

workers::SshSettings parse_ssh(const json& object, const std::string& source) {
  Reader read(object, source, "ssh.");
  read.only(kSshKeys);
  workers::SshSettings ssh;
  ssh.workers = static_cast<int>(read.integer("workers", ssh.workers, 1, 64));
  read.string("user", ssh.default_user, true);
  ssh.default_port = static_cast<int>(read.integer("port", ssh.default_port, 1, 65535));
  ssh.key_files = {"~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"};
  read.strings("key_files", ssh.key_files);
  read.boolean("use_agent", ssh.use_agent);
  ssh.known_hosts_files = {"~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"};
  read.strings("known_hosts_files", ssh.known_hosts_files);
  ssh.accepted_hosts_file = "~/.local/state/drunc-zmq/known_hosts";
  read.string("accepted_hosts_file", ssh.accepted_hosts_file, false);
  std::string policy = "accept-new";
  read.string("host_key_policy", policy, false);
  if (policy == "strict")
    ssh.host_key_policy = workers::HostKeyPolicy::strict;
  else if (policy == "accept-new")
    ssh.host_key_policy = workers::HostKeyPolicy::accept_new;
  else if (policy == "off")
    ssh.host_key_policy = workers::HostKeyPolicy::off;
  else
    read.fail("host_key_policy", "must be strict, accept-new or off");
  ssh.connect_timeout = read.seconds("connect_timeout_s", ssh.connect_timeout, 0.1, 600);
  ssh.keepalive_interval = read.seconds("keepalive_interval_s", ssh.keepalive_interval, 1, 3600);
  ssh.idle_close = read.seconds("idle_close_s", ssh.idle_close, 0, 86400);
  ssh.max_parallel_handshakes_per_host =
      static_cast<int>(read.integer("max_parallel_handshakes_per_host", ssh.max_parallel_handshakes_per_host, 1, 100));
  for (auto& path : ssh.key_files) path = expand_home(path);
  for (auto& path : ssh.known_hosts_files) path = expand_home(path);
  ssh.accepted_hosts_file = expand_home(ssh.accepted_hosts_file);

  // Files named explicitly must be there now, not at the first boot an hour later.
  if (read.find("key_files"))
    for (const auto& path : ssh.key_files)
      if (::access(path.c_str(), R_OK) != 0) read.fail("key_files", path + ": " + std::strerror(errno));
  if (read.find("known_hosts_files"))
    for (const auto& path : ssh.known_hosts_files)
      if (::access(path.c_str(), R_OK) != 0) {
        if (ssh.host_key_policy == workers::HostKeyPolicy::strict)
          read.fail("known_hosts_files", path + ": " + std::strerror(errno) + " (host_key_policy is strict)");
        spdlog::warn("{}: setting \"ssh.known_hosts_files\": {}: {}", source, path, std::strerror(errno));
      }
  if (ssh.host_key_policy == workers::HostKeyPolicy::accept_new) {
    // Writable if it exists, else the nearest existing directory above it must be.
    std::string probe = ssh.accepted_hosts_file;
    while (::access(probe.c_str(), F_OK) != 0 && probe.find('/') != std::string::npos) {
      probe.resize(probe.rfind('/'));
      if (probe.empty()) probe = "/";
    }
    struct stat status {};
    const bool exists = ::stat(probe.c_str(), &status) == 0;
    const bool right_kind = exists && (probe == ssh.accepted_hosts_file ? S_ISREG(status.st_mode) : S_ISDIR(status.st_mode));
    if (!right_kind || ::access(probe.c_str(), W_OK) != 0)
      read.fail("accepted_hosts_file", ssh.accepted_hosts_file + " cannot be written (" + probe + ": " +
                                           (right_kind ? std::strerror(errno) : exists ? "not a directory" : "missing") +
                                           ")");
  }
  return ssh;
}

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
      read.fail("server_certificate", "is required with mode \"curve\": the server's secret certificate file "
                                      "(drunc-pm keygen writes one)");
    if (security.client_certificates.empty())
      read.fail("client_certificates", "is required with mode \"curve\": a directory of the admitted clients' "
                                       "public certificates");
  }
  return security;
}

const std::vector<std::string> kKnownKeys = {
    "name",          "session",        "control_endpoint",       "events_endpoint", "events_advertised_endpoint",
    "kill_timeout_s", "log_ring_lines", "max_message_bytes",      "max_unread_reply_bytes", "events_high_water_mark",
    "local_hosts",   "log_level",      "hosts",                  "ssh",             "security"};

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
  } catch (const json::out_of_range& error) {  // a number too large for a double (1e400)
    throw ConfigError(source + ": a number is out of range: " + error.what());
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
  config.max_unread_reply_bytes =
      read.integer("max_unread_reply_bytes", std::int64_t{64} << 20, std::int64_t{1} << 16, std::int64_t{1} << 40);
  config.events_high_water_mark = static_cast<int>(read.integer("events_high_water_mark", 100000, 0, 100'000'000));
  read.strings("local_hosts", config.local_hosts);
  if (config.local_hosts.empty())
    read.fail("local_hosts", "must name at least one host (\"localhost\"): processes for this machine need a name");
  read.string("log_level", config.log_level, false);
  if (std::find(kLogLevels.begin(), kLogLevels.end(), config.log_level) == kLogLevels.end())
    read.fail("log_level", "must be one of trace, debug, info, warn, error, critical, off");

  if (const json* ssh = read.find("ssh")) config.ssh = parse_ssh(*ssh, source);
  else config.ssh = parse_ssh(json::object(), source);
  if (const json* security = read.find("security")) config.security = parse_security(*security, source);
  if (const json* hosts = read.find("hosts")) {
    if (!hosts->is_object()) read.fail("hosts", "must be an object of host name -> {port, user}");
    for (const auto& [name, value] : hosts->items()) {
      Reader host(value, source, "hosts." + name + ".");
      host.only({"port", "user"});
      Config::Host entry;
      entry.port = static_cast<int>(host.integer("port", 0, 1, 65535));
      host.string("user", entry.user, true);
      config.hosts[name] = entry;
    }
  }

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

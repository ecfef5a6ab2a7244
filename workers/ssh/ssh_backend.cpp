#include "ssh/ssh_backend.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <spdlog/spdlog.h>

#include "host_address.hpp"
#include "ssh/ssh_worker.hpp"

namespace drunc::workers {
namespace {

using nlohmann::json;

std::string worker_name(std::size_t index) { return "ssh-" + std::to_string(index); }

class SshBackend : public Backend {
 public:
  explicit SshBackend(SshSettings settings) : settings_(std::move(settings)) {}

  std::vector<std::string> worker_names() const override {
    std::vector<std::string> names;
    for (int i = 0; i < settings_.workers; ++i) names.push_back(worker_name(static_cast<std::size_t>(i)));
    return names;
  }

  // The port and login of hosts.NAME, then of ssh; the user of metadata
  // before ssh.user; then $USER.
  std::optional<Placement> place(const std::string& allowed_host,
                                 const dunedaq::druncschema::ProcessMetadata& metadata) const override {
    const auto address = parse_host_address(allowed_host);
    if (!address) return std::nullopt;
    Placement placement;
    placement.host = address->host;
    placement.port = address->port;
    const auto overrides = settings_.hosts.find(address->host);
    const bool overridden = overrides != settings_.hosts.end();
    if (placement.port == 0)
      placement.port = overridden && overrides->second.port ? overrides->second.port : settings_.default_port;
    placement.user = overridden && !overrides->second.user.empty() ? overrides->second.user
                     : !metadata.user().empty()                    ? metadata.user()
                                                                   : settings_.default_user;
    if (placement.user.empty()) {
      const char* user = std::getenv("USER");
      placement.user = user ? user : "root";
    }
    placement.worker =
        worker_name(std::hash<std::string>{}(address->host) % static_cast<std::size_t>(settings_.workers));
    return placement;
  }

  std::unique_ptr<Worker> start_worker(zmq::context_t& context, const std::string& endpoint, const std::string&,
                                       const std::string& routing_id) const override {
    return std::make_unique<SshWorker>(context, endpoint, routing_id, settings_);
  }

 private:
  SshSettings settings_;
};

const std::vector<std::string> kSshKeys = {"workers",
                                           "user",
                                           "port",
                                           "key_files",
                                           "use_agent",
                                           "known_hosts_files",
                                           "accepted_hosts_file",
                                           "host_key_policy",
                                           "connect_timeout_s",
                                           "keepalive_interval_s",
                                           "idle_close_s",
                                           "max_parallel_handshakes_per_host"};

// The per-host logins: {"name": {"port": 2222, "user": "daq"}}.
void parse_hosts(const json& hosts, const std::string& source, const std::string& prefix, SshSettings& ssh) {
  if (!hosts.is_object())
    throw ConfigError(source + ": setting \"" + prefix + "hosts\": must be an object of host name -> {port, user}");
  for (const auto& [name, value] : hosts.items()) {
    SettingsReader host(value, source, prefix + "hosts." + name + ".");
    host.only({"port", "user"});
    SshSettings::HostLogin entry;
    entry.port = static_cast<int>(host.integer("port", 0, 1, 65535));
    host.string("user", entry.user, true);
    ssh.hosts[name] = entry;
  }
}

// object: the ssh keys (prefix "ssh." or "backends.ssh."), plus "hosts" in backends.ssh.
SshSettings parse_ssh(const json& object, const std::string& source, const std::string& prefix, bool with_hosts) {
  SettingsReader read(object, source, prefix);
  std::vector<std::string> known = kSshKeys;
  if (with_hosts) known.push_back("hosts");
  read.only(known);
  SshSettings ssh;
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
    ssh.host_key_policy = HostKeyPolicy::strict;
  else if (policy == "accept-new")
    ssh.host_key_policy = HostKeyPolicy::accept_new;
  else if (policy == "off")
    ssh.host_key_policy = HostKeyPolicy::off;
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
  if (with_hosts)
    if (const json* hosts = read.find("hosts")) parse_hosts(*hosts, source, prefix, ssh);

  // Files named explicitly must be there now, not at the first boot an hour later.
  if (read.find("key_files"))
    for (const auto& path : ssh.key_files)
      if (::access(path.c_str(), R_OK) != 0) read.fail("key_files", path + ": " + std::strerror(errno));
  if (read.find("known_hosts_files"))
    for (const auto& path : ssh.known_hosts_files)
      if (::access(path.c_str(), R_OK) != 0) {
        if (ssh.host_key_policy == HostKeyPolicy::strict)
          read.fail("known_hosts_files", path + ": " + std::strerror(errno) + " (host_key_policy is strict)");
        spdlog::warn("{}: setting \"{}known_hosts_files\": {}: {}", source, prefix, path, std::strerror(errno));
      }
  if (ssh.host_key_policy == HostKeyPolicy::accept_new) {
    // Writable if it exists, else the nearest existing directory above it must be.
    std::string probe = ssh.accepted_hosts_file;
    while (::access(probe.c_str(), F_OK) != 0 && probe.find('/') != std::string::npos) {
      probe.resize(probe.rfind('/'));
      if (probe.empty()) probe = "/";
    }
    struct stat status {};
    const bool exists = ::stat(probe.c_str(), &status) == 0;
    const bool right_kind =
        exists && (probe == ssh.accepted_hosts_file ? S_ISREG(status.st_mode) : S_ISDIR(status.st_mode));
    if (!right_kind || ::access(probe.c_str(), W_OK) != 0)
      read.fail("accepted_hosts_file", ssh.accepted_hosts_file + " cannot be written (" + probe + ": " +
                                           (right_kind ? std::strerror(errno)
                                            : exists   ? "not a directory"
                                                       : "missing") +
                                           ")");
  }
  return ssh;
}

SshSettings parse(const SettingsSection& input) {
  const json& document = input.document;
  const auto legacy_ssh = document.find("ssh");
  const auto legacy_hosts = document.find("hosts");
  if (input.section) {
    for (const auto& key : {"ssh", "hosts"})
      if (document.contains(key))
        throw ConfigError(input.source + ": setting \"" + key + "\": give either it or backends.ssh, not both");
    return parse_ssh(*input.section, input.source, "backends.ssh.", true);
  }
  SshSettings ssh = parse_ssh(legacy_ssh != document.end() ? *legacy_ssh : json::object(), input.source, "ssh.", false);
  if (legacy_hosts != document.end()) parse_hosts(*legacy_hosts, input.source, "", ssh);
  return ssh;
}

}  // namespace

BackendType ssh_backend_type() {
  return {kSshBackend,
          {"ssh", "hosts"},
          [] { return std::any(SshSettings{}); },
          [](const SettingsSection& section) { return std::any(parse(section)); },
          [](const std::any& settings) -> std::shared_ptr<const Backend> {
            return std::make_shared<SshBackend>(std::any_cast<const SshSettings&>(settings));
          }};
}

}  // namespace drunc::workers

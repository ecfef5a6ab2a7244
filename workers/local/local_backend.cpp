#include "local/local_backend.hpp"

#include <unistd.h>

#include <algorithm>

#include "host_address.hpp"
#include "local/local_launcher.hpp"

namespace drunc::workers {
namespace {

constexpr const char* kName = "local";
constexpr const char* kWorker = "local";

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(LocalSettings settings) : settings_(std::move(settings)) {}

  std::vector<std::string> worker_names() const override { return {kWorker}; }

  std::optional<Placement> place(const std::string& allowed_host,
                                 const dunedaq::druncschema::ProcessMetadata&) const override {
    const auto address = parse_host_address(allowed_host);
    if (!address || address->port != 0) return std::nullopt;
    if (std::find(settings_.hosts.begin(), settings_.hosts.end(), address->host) == settings_.hosts.end())
      return std::nullopt;
    return Placement{kWorker, address->host, 0, {}};
  }

  std::unique_ptr<Worker> start_worker(zmq::context_t& context, const std::string& endpoint, const std::string&,
                                       const std::string& routing_id) const override {
    return std::make_unique<LocalLauncher>(context, endpoint, routing_id, kName);
  }

 private:
  LocalSettings settings_;
};

LocalSettings parse(const SettingsSection& input) {
  LocalSettings settings;
  const auto legacy = input.document.find("local_hosts");
  const bool has_legacy = legacy != input.document.end();
  if (input.section && has_legacy)
    throw ConfigError(input.source + ": setting \"local_hosts\": give either it or backends.local.hosts, not both");
  std::string key = "local_hosts";
  if (input.section) {
    SettingsReader read(*input.section, input.source, "backends.local.");
    read.only({"hosts"});
    read.strings("hosts", settings.hosts);
    key = "backends.local.hosts";
  } else {
    SettingsReader(input.document, input.source).strings("local_hosts", settings.hosts);
  }
  if (settings.hosts.empty())
    throw ConfigError(input.source + ": setting \"" + key +
                      "\": must name at least one host (\"localhost\"): processes for this machine need a name");
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof hostname - 1) == 0 && hostname[0] != '\0' &&
      std::find(settings.hosts.begin(), settings.hosts.end(), hostname) == settings.hosts.end())
    settings.hosts.emplace_back(hostname);
  return settings;
}

}  // namespace

BackendType local_backend_type() {
  return {kName,
          {"local_hosts"},
          [] { return std::any(LocalSettings{}); },
          [](const SettingsSection& section) { return std::any(parse(section)); },
          [](const std::any& settings) -> std::shared_ptr<const Backend> {
            return std::make_shared<LocalBackend>(std::any_cast<const LocalSettings&>(settings));
          }};
}

}  // namespace drunc::workers

#include "host_router.hpp"

#include <cctype>
#include <cstdlib>
#include <functional>

namespace drunc::broker {

int parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return 0;
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + (c - '0');
  }
  return port <= 65535 ? port : 0;
}

bool plausible_host_name(std::string_view host) {
  for (unsigned char c : host)
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%') return false;
  return true;
}

std::optional<HostRoute> route_host(const Config& config, const std::string& allowed_host,
                                    const dunedaq::druncschema::ProcessMetadata& metadata) {
  HostRoute route;
  route.host = allowed_host;
  // A bare v6 address has several colons and no port.
  if (!allowed_host.empty() && allowed_host.front() == '[') {
    const auto close = allowed_host.find(']');
    if (close == std::string::npos) return std::nullopt;
    route.host = allowed_host.substr(1, close - 1);
    if (close + 1 < allowed_host.size()) {
      if (allowed_host[close + 1] != ':') return std::nullopt;
      route.port = parse_port(std::string_view(allowed_host).substr(close + 2));
      if (route.port == 0) return std::nullopt;
    }
  } else if (const auto colon = allowed_host.find(':');
             colon != std::string::npos && allowed_host.find(':', colon + 1) == std::string::npos) {
    route.host = allowed_host.substr(0, colon);
    route.port = parse_port(std::string_view(allowed_host).substr(colon + 1));
    if (route.port == 0) return std::nullopt;
  }
  if (route.host.empty() || !plausible_host_name(route.host)) return std::nullopt;
  // A local host with an explicit port means an SSH server on this machine.
  if (route.port == 0)
    for (const auto& local : config.local_hosts)
      if (local == route.host) {
        route.worker = kLocalWorker;
        return route;
      }
  const auto overrides = config.hosts.find(route.host);
  const bool overridden = overrides != config.hosts.end();
  if (route.port == 0) route.port = overridden && overrides->second.port ? overrides->second.port : config.ssh.default_port;
  route.user = overridden && !overrides->second.user.empty() ? overrides->second.user
               : !metadata.user().empty()                    ? metadata.user()
                                                             : config.ssh.default_user;
  if (route.user.empty()) {
    const char* user = std::getenv("USER");
    route.user = user ? user : "root";
  }
  route.worker = ssh_worker_name(static_cast<int>(std::hash<std::string>{}(route.host) % config.ssh.workers));
  return route;
}

}  // namespace drunc::broker

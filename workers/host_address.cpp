#include "host_address.hpp"

#include <cctype>

namespace drunc::workers {

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

std::optional<HostAddress> parse_host_address(std::string_view allowed_host) {
  HostAddress address;
  address.host = allowed_host;
  // A bare v6 address has several colons and no port.
  if (!allowed_host.empty() && allowed_host.front() == '[') {
    const auto close = allowed_host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    address.host = allowed_host.substr(1, close - 1);
    if (close + 1 < allowed_host.size()) {
      if (allowed_host[close + 1] != ':') return std::nullopt;
      address.port = parse_port(allowed_host.substr(close + 2));
      if (address.port == 0) return std::nullopt;
    }
  } else if (const auto colon = allowed_host.find(':');
             colon != std::string_view::npos && allowed_host.find(':', colon + 1) == std::string_view::npos) {
    address.host = allowed_host.substr(0, colon);
    address.port = parse_port(allowed_host.substr(colon + 1));
    if (address.port == 0) return std::nullopt;
  }
  if (address.host.empty() || !plausible_host_name(address.host)) return std::nullopt;
  return address;
}

}  // namespace drunc::workers

// An entry of process_restriction.allowed_hosts read as a host and a port:
// "name", "name:port", "[v6 address]:port", a bare v6 address. Shared by the
// backends that serve host names (local, SSH); plain functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace drunc::workers {

struct HostAddress {
  std::string host;  // without the port or the brackets
  int port = 0;      // 0: none given
};

// 1 to 65535 written in decimal digits only, else 0: "2222x", "+22", " 1" are not ports.
int parse_port(std::string_view text);

// Letters, digits and . - _ (names), : (IPv6 addresses), % (IPv6 zones):
// anything else ("a;rm -rf /", spaces, quotes) cannot be a host.
bool plausible_host_name(std::string_view host);

// The host and port allowed_host names; nothing if it is not one (a bad
// port, an unclosed bracket, an empty or implausible name).
std::optional<HostAddress> parse_host_address(std::string_view allowed_host);

}  // namespace drunc::workers

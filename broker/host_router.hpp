// From an entry of allowed_hosts to where a process starts: which launcher
// worker, which host, and for SSH the port and login. Plain functions over
// the configuration: no sockets, no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"
#include "druncschema/process_manager.pb.h"

namespace drunc::broker {

inline constexpr const char* kLocalWorker = "local";
inline std::string ssh_worker_name(int index) { return "ssh-" + std::to_string(index); }

struct HostRoute {
  std::string worker;  // the launcher worker's name
  std::string host;    // without the port
  int port = 0;        // SSH only
  std::string user;    // SSH only
};

// 1 to 65535 written in decimal digits only, else 0: "2222x", "+22", " 1" are not ports.
int parse_port(std::string_view text);

// Letters, digits and . - _ (names), : (IPv6 addresses), % (IPv6 zones):
// anything else ("a;rm -rf /", spaces, quotes) cannot be a host.
bool plausible_host_name(std::string_view host);

// Where allowed_host ("name", "name:port", "[v6 address]:port", a bare v6
// address) sends a process: a name of local_hosts without a port goes to the
// local launcher; anything else to the SSH worker of that host (always the
// same one, so that its connections are pooled in one place), with the port
// and login of hosts.NAME, then ssh, and the user of metadata, then ssh.user,
// then $USER. Nothing if allowed_host is not a valid host.
std::optional<HostRoute> route_host(const Config& config, const std::string& allowed_host,
                                    const dunedaq::druncschema::ProcessMetadata& metadata);

}  // namespace drunc::broker

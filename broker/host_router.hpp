// From an entry of allowed_hosts to where a process starts: which backend,
// which of its workers, which host (and for backends that connect, the port
// and login). Plain functions over the configured backends: no sockets, no
// state.
//
// The fallback order: a boot tries its allowed_hosts one after another, in
// the order given, until one starts it (operations.hpp, next_host); each
// entry goes to the first backend of the table (workers/backend_table.cpp)
// that serves it: the local backend for this machine's names without a port,
// then any backend added before ssh, then ssh for every other host name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "druncschema/process_manager.pb.h"

namespace drunc::broker {

struct HostRoute {
  std::string backend;  // its table name
  std::string worker;   // the backend's worker that starts it
  std::string host;     // Launch.host (without the port)
  int port = 0;         // Launch.port, for backends that connect
  std::string user;     // Launch.user, for backends that log in
};

// Where allowed_host runs: the first backend that serves it; nothing if none
// does (not a valid host, or a name no backend takes).
std::optional<HostRoute> route_host(const std::vector<workers::ConfiguredBackend>& backends,
                                    const std::string& allowed_host,
                                    const dunedaq::druncschema::ProcessMetadata& metadata);

// Each of allowed_hosts, in the order a boot tries them, with its route.
std::vector<std::pair<std::string, std::optional<HostRoute>>> route_hosts(
    const std::vector<workers::ConfiguredBackend>& backends,
    const google::protobuf::RepeatedPtrField<std::string>& allowed_hosts,
    const dunedaq::druncschema::ProcessMetadata& metadata);

}  // namespace drunc::broker

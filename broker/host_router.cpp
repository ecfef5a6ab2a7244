#include "host_router.hpp"

namespace drunc::broker {

std::optional<HostRoute> route_host(const std::vector<workers::ConfiguredBackend>& backends,
                                    const std::string& allowed_host,
                                    const dunedaq::druncschema::ProcessMetadata& metadata) {
  for (const auto& [name, backend] : backends)
    if (auto placement = backend->place(allowed_host, metadata))
      return HostRoute{name, std::move(placement->worker), std::move(placement->host), placement->port,
                       std::move(placement->user)};
  return std::nullopt;
}

std::vector<std::pair<std::string, std::optional<HostRoute>>> route_hosts(
    const std::vector<workers::ConfiguredBackend>& backends,
    const google::protobuf::RepeatedPtrField<std::string>& allowed_hosts,
    const dunedaq::druncschema::ProcessMetadata& metadata) {
  std::vector<std::pair<std::string, std::optional<HostRoute>>> routes;
  for (const auto& host : allowed_hosts) routes.emplace_back(host, route_host(backends, host, metadata));
  return routes;
}

}  // namespace drunc::broker

#include "backend.hpp"

#include <set>

namespace drunc::workers {

BackendSettings BackendSettings::defaults(const BackendTable& table) {
  BackendSettings settings;
  for (const auto& type : table) settings.entries.push_back({type, type.defaults()});
  return settings;
}

std::vector<ConfiguredBackend> create_backends(const BackendSettings& settings) {
  std::vector<ConfiguredBackend> backends;
  std::set<std::string> names, workers;
  for (const auto& entry : settings.entries) {
    if (!names.insert(entry.type.name).second) throw ConfigError("two backends are named \"" + entry.type.name + "\"");
    auto backend = entry.type.create(entry.settings);
    for (const auto& worker : backend->worker_names())
      if (worker.empty() || worker.find('#') != std::string::npos || !workers.insert(worker).second)
        throw ConfigError("backend \"" + entry.type.name + "\": worker name \"" + worker +
                          "\" is empty, has a '#', or is another backend's");
    backends.push_back({entry.type.name, std::move(backend)});
  }
  return backends;
}

}  // namespace drunc::workers

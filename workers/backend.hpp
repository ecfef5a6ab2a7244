// What a backend is: a way of starting processes on some hosts (this machine,
// hosts reached over SSH, ...), seen by the broker only through this header.
//
// A backend type (BackendType, one entry of backend_table()) has a name,
// parses its own section of the configuration (backends.NAME), and makes a
// Backend from those settings. A Backend says which allowed_hosts entries it
// serves (place) and on which of its worker threads, and starts those threads
// on the broker's inproc worker endpoint, again when one failed. A worker
// thread speaks drunc_zmq.internal (internal.proto): Ready naming its backend
// first, then for each Launch, Started or StartFailed, output lines and
// Exited; Kill signals processes. What runs a process (a script, a
// container) is the backend's own business.
//
// Adding a backend: a folder under workers/ with its Backend, settings and
// worker thread, and one line in the table (backend_table.cpp).
// docs/ARCHITECTURE.md has a worked example.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "druncschema/process_manager.pb.h"
#include "settings_reader.hpp"

namespace drunc::workers {

// Where a backend starts a process for one allowed_hosts entry: what the
// Launch it is sent carries.
struct Placement {
  std::string worker;  // the worker thread (one of the backend's worker_names())
  std::string host;    // Launch.host
  int port = 0;        // Launch.port, for a backend that connects somewhere
  std::string user;    // Launch.user, for a backend that logs in
};

// A worker thread a backend started. Destroying it stops the thread; the
// processes it started end with it.
class Worker {
 public:
  virtual ~Worker() = default;
};

// One configured backend.
class Backend {
 public:
  virtual ~Backend() = default;
  // Its worker threads' names: each is the routing id of the thread's first
  // incarnation ("#N" is added for the Nth restart); unique among backends.
  virtual std::vector<std::string> worker_names() const = 0;
  // Where allowed_host runs, or nothing if this backend does not serve it.
  virtual std::optional<Placement> place(const std::string& allowed_host,
                                         const dunedaq::druncschema::ProcessMetadata& metadata) const = 0;
  // Starts worker (one of worker_names()) as routing_id, connected to
  // endpoint; it announces itself with Ready naming this backend. Throws if
  // it cannot.
  virtual std::unique_ptr<Worker> start_worker(zmq::context_t& context, const std::string& endpoint,
                                               const std::string& worker, const std::string& routing_id) const = 0;
};

// A backend's part of the configuration file.
struct SettingsSection {
  const nlohmann::json* section;   // backends.NAME, or null when not given
  const nlohmann::json& document;  // the whole file, for the backend's legacy_keys
  const std::string& source;       // the file, for error messages
};

// An entry of the backend table.
struct BackendType {
  std::string name;  // backends.NAME in the configuration; Ready.backend
  // Top-level keys of the configuration this backend reads too, from before
  // backends.NAME existed ("local_hosts"; "ssh", "hosts").
  std::vector<std::string> legacy_keys;
  // Its settings (any copyable type) as a default-constructed Config has them.
  std::function<std::any()> defaults;
  // Its settings from the configuration file; throws ConfigError naming the setting.
  std::function<std::any(const SettingsSection&)> parse;
  // The backend those settings describe. Throws ConfigError if it cannot be.
  std::function<std::shared_ptr<const Backend>(const std::any& settings)> create;
};
using BackendTable = std::vector<BackendType>;

// The backends of this build, in the order each allowed_hosts entry is offered
// to them: the first that serves it takes it.
const BackendTable& backend_table();

// Each backend of a table with its settings, in table order: what the
// broker's Config holds.
class BackendSettings {
 public:
  struct Entry {
    BackendType type;
    std::any settings;
  };

  // Every backend of table, with its default settings.
  static BackendSettings defaults(const BackendTable& table = backend_table());

  // The settings of the backend whose settings are of type Settings (to read
  // or adjust before the broker starts); throws std::logic_error if none is.
  template <typename Settings>
  Settings& get() {
    for (auto& entry : entries)
      if (auto* settings = std::any_cast<Settings>(&entry.settings)) return *settings;
    throw std::logic_error(std::string("no backend has settings of type ") + typeid(Settings).name());
  }
  template <typename Settings>
  const Settings& get() const {
    return const_cast<BackendSettings*>(this)->get<Settings>();
  }

  std::vector<Entry> entries;
};

// A backend made from its settings, with its table name.
struct ConfiguredBackend {
  std::string name;
  std::shared_ptr<const Backend> backend;
};

// Makes each backend; throws ConfigError if two of them name the same worker.
std::vector<ConfiguredBackend> create_backends(const BackendSettings& settings);

}  // namespace drunc::workers

// Reading one object of the broker's JSON configuration, with errors that
// name the setting. Shared by the broker's own settings (broker/config.cpp)
// and by each backend, which parses its own section (backend.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace drunc::workers {

// A setting that is unknown, of the wrong type or out of range. what() names it.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the settings of one JSON object; prefix names nested objects
// ("backends.ssh.") in errors, source the file.
class SettingsReader {
 public:
  SettingsReader(const nlohmann::json& document, std::string source, std::string prefix = "")
      : document_(document), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // Refuses any key not in known (and anything but an object).
  void only(const std::vector<std::string>& known) const;
  const nlohmann::json* find(const std::string& key) const;

  void boolean(const std::string& key, bool& target) const;
  void string(const std::string& key, std::string& target, bool allow_empty) const;
  void strings(const std::string& key, std::vector<std::string>& target) const;
  double number(const std::string& key, double fallback, double min, double max) const;
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) const;
  std::chrono::milliseconds seconds(const std::string& key, std::chrono::milliseconds fallback, double min,
                                    double max) const;

  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

 private:
  const nlohmann::json& document_;
  std::string source_;
  std::string prefix_;
};

// "~/x" -> "$HOME/x"
std::string expand_home(const std::string& path);

}  // namespace drunc::workers

#include "settings_reader.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace drunc::workers {
namespace {

std::string format(double number) {
  std::ostringstream out;
  out << number;
  return out.str();
}

}  // namespace

void SettingsReader::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(source_ + ": setting \"" + prefix_ + key + "\": " + message);
}

void SettingsReader::only(const std::vector<std::string>& known) const {
  if (!document_.is_object()) throw ConfigError(source_ + ": setting \"" + prefix_ + "\" must be an object");
  for (const auto& [key, value] : document_.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw ConfigError(source_ + ": unknown setting \"" + prefix_ + key + "\"");
}

const nlohmann::json* SettingsReader::find(const std::string& key) const {
  auto it = document_.find(key);
  return it == document_.end() ? nullptr : &*it;
}

void SettingsReader::boolean(const std::string& key, bool& target) const {
  const nlohmann::json* value = find(key);
  if (!value) return;
  if (!value->is_boolean()) fail(key, "must be true or false");
  target = value->get<bool>();
}

void SettingsReader::string(const std::string& key, std::string& target, bool allow_empty) const {
  const nlohmann::json* value = find(key);
  if (!value) return;
  if (!value->is_string()) fail(key, "must be a string");
  target = value->get<std::string>();
  if (!allow_empty && target.empty()) fail(key, "must not be empty");
}

void SettingsReader::strings(const std::string& key, std::vector<std::string>& target) const {
  const nlohmann::json* value = find(key);
  if (!value) return;
  if (!value->is_array()) fail(key, "must be a list of strings");
  target.clear();
  for (const auto& item : *value) {
    if (!item.is_string()) fail(key, "must be a list of strings");
    target.push_back(item.get<std::string>());
  }
}

double SettingsReader::number(const std::string& key, double fallback, double min, double max) const {
  const nlohmann::json* value = find(key);
  if (!value) return fallback;
  if (!value->is_number()) fail(key, "must be a number");
  const double number = value->get<double>();
  if (number < min || number > max)
    fail(key, "must be between " + format(min) + " and " + format(max) + ", got " + format(number));
  return number;
}

std::int64_t SettingsReader::integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                                     std::int64_t max) const {
  const nlohmann::json* value = find(key);
  if (!value) return fallback;
  if (!value->is_number_integer()) fail(key, "must be a whole number");
  const auto number = value->get<std::int64_t>();
  if (number < min || number > max)
    fail(key,
         "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(number));
  return number;
}

std::chrono::milliseconds SettingsReader::seconds(const std::string& key, std::chrono::milliseconds fallback,
                                                  double min, double max) const {
  const double value = number(key, fallback.count() / 1000.0, min, max);
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * 1000.0 + 0.5));
}

std::string expand_home(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + path.substr(1);
}

}  // namespace drunc::workers

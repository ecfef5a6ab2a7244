#include "session_file.hpp"

#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

namespace drunc::cli {
namespace {

using nlohmann::json;
namespace pm = dunedaq::druncschema;

const std::vector<std::string> kSessionKeys = {"session",        "user", "hosts",     "execution_directory",
                                               "logs_directory", "env",  "processes", "certificate",
                                               "server_key"};
const std::vector<std::string> kProcessKeys = {"name", "commands", "user",   "hosts", "execution_directory",
                                               "log",  "env",      "tree_id"};

void check_keys(const json& object, const std::vector<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : object.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw SessionFileError(where + ": unknown key \"" + key + "\"");
}

std::string string_of(const json& object, const std::string& key, const std::string& where,
                      const std::string& fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_string()) throw SessionFileError(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

std::vector<std::string> strings_of(const json& value, const std::string& what) {
  if (!value.is_array()) throw SessionFileError(what + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : value) {
    if (!item.is_string()) throw SessionFileError(what + " must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> env_of(const json& object, const std::string& where) {
  std::map<std::string, std::string> env;
  auto it = object.find("env");
  if (it == object.end()) return env;
  if (!it->is_object()) throw SessionFileError(where + ": \"env\" must be an object of strings");
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) throw SessionFileError(where + ": env \"" + key + "\" must be a string");
    env[key] = value.get<std::string>();
  }
  return env;
}

json read_json(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw SessionFileError(path + ": cannot be read");
  try {
    return json::parse(file, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& error) {
    throw SessionFileError(path + ": not valid JSON: " + error.what());
  }
}

}  // namespace

SessionKeys session_file_keys(const std::string& path) {
  const json document = read_json(path);
  if (!document.is_object()) return {};
  const auto slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  auto resolve = [&](const std::string& value, bool may_be_key) {
    if (value.empty() || value.front() == '/') return value;
    if (may_be_key && value.size() == 40 && value.find('/') == std::string::npos &&
        value.find('.') == std::string::npos)
      return value;  // a Z85 key, not a file name
    return directory + value;
  };
  SessionKeys keys;
  keys.certificate = resolve(string_of(document, "certificate", path, ""), false);
  keys.server_key = resolve(string_of(document, "server_key", path, ""), true);
  return keys;
}

std::vector<pm::BootRequest> load_session_file(const std::string& path, const std::string& default_user) {
  const json document = read_json(path);
  if (!document.is_object()) throw SessionFileError(path + ": must be a JSON object");
  check_keys(document, kSessionKeys, path);

  const std::string session = string_of(document, "session", path, "");
  const std::string user = string_of(document, "user", path, default_user);
  const std::string directory = string_of(document, "execution_directory", path, "");
  const std::string logs_directory = string_of(document, "logs_directory", path, "");
  const auto hosts = document.contains("hosts") ? strings_of(document["hosts"], path + ": \"hosts\"")
                                                : std::vector<std::string>{"localhost"};
  const auto env = env_of(document, path);

  auto processes = document.find("processes");
  if (processes == document.end() || !processes->is_array() || processes->empty())
    throw SessionFileError(path + ": \"processes\" must be a non-empty list");

  std::vector<pm::BootRequest> requests;
  for (std::size_t i = 0; i < processes->size(); ++i) {
    const json& process = (*processes)[i];
    const std::string where = path + ": processes[" + std::to_string(i) + "]";
    if (!process.is_object()) throw SessionFileError(where + " must be an object");
    check_keys(process, kProcessKeys, where);
    const std::string name = string_of(process, "name", where, "");
    if (name.empty()) throw SessionFileError(where + ": \"name\" is required");

    pm::BootRequest request;
    auto* description = request.mutable_process_description();
    auto* metadata = description->mutable_metadata();
    metadata->set_name(name);
    metadata->set_user(string_of(process, "user", where, user));
    if (!session.empty()) metadata->set_session(session);
    if (process.contains("tree_id")) metadata->set_tree_id(string_of(process, "tree_id", where, ""));

    auto commands = process.find("commands");
    if (commands == process.end() || !commands->is_array() || commands->empty())
      throw SessionFileError(where + ": \"commands\" must be a non-empty list of [executable, arguments...]");
    for (const auto& command : *commands) {
      const auto words = strings_of(command, where + ": each command");
      if (words.empty()) throw SessionFileError(where + ": a command is empty");
      auto* exec = description->add_executable_and_arguments();
      exec->set_exec(words[0]);
      for (std::size_t w = 1; w < words.size(); ++w) exec->add_args(words[w]);
    }

    for (const auto& [key, value] : env) (*description->mutable_env())[key] = value;
    for (const auto& [key, value] : env_of(process, where)) (*description->mutable_env())[key] = value;
    description->set_process_execution_directory(string_of(process, "execution_directory", where, directory));
    std::string default_log;
    if (!logs_directory.empty())
      default_log = logs_directory + "/" + (session.empty() ? "" : session + "_") + name + ".log";
    description->set_process_logs_path(string_of(process, "log", where, default_log));

    const auto process_hosts = process.contains("hosts") ? strings_of(process["hosts"], where + ": \"hosts\"") : hosts;
    for (const auto& host : process_hosts) request.mutable_process_restriction()->add_allowed_hosts(host);
    requests.push_back(std::move(request));
  }
  return requests;
}

}  // namespace drunc::cli

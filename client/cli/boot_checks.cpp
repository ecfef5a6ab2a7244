#include "boot_checks.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "endpoint.hpp"

namespace drunc::cli {

namespace pm = dunedaq::druncschema;

namespace {

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// Commands run as lines of a bash script (workers/launch_script.cpp): a builtin is a command too.
bool is_bash_builtin(const std::string& name) {
  static const std::set<std::string> builtins = {
      ".",       ":",       "[",         "alias",    "bg",       "bind",    "break",   "builtin", "caller",  "cd",
      "command", "compgen", "complete",  "compopt",  "continue", "declare", "dirs",    "disown",  "echo",    "enable",
      "eval",    "exec",    "exit",      "export",   "false",    "fc",      "fg",      "getopts", "hash",    "help",
      "history", "jobs",    "kill",      "let",      "local",    "logout",  "mapfile", "popd",    "printf",  "pushd",
      "pwd",     "read",    "readarray", "readonly", "return",   "set",     "shift",   "shopt",   "source",  "suspend",
      "test",    "times",   "trap",      "true",     "type",     "typeset", "ulimit",  "umask",   "unalias", "unset",
      "wait",    "{",       "}",         "!",        "[[",       "]]",      "if",      "then",    "else",    "elif",
      "fi",      "case",    "esac",      "for",      "select",   "while",   "until",   "do",      "done",    "function",
      "time",    "coproc"};
  return builtins.count(name) > 0;
}

// Why path cannot be run as an executable, or empty.
std::string executable_problem(const std::string& path) {
  struct stat status;
  if (::stat(path.c_str(), &status) != 0) return "does not exist";
  if (S_ISDIR(status.st_mode)) return "is a directory";
  if ((status.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) return "is not executable";
  return {};
}

bool found_on_path(const std::string& name, const std::string& path_variable) {
  std::size_t start = 0;
  while (start <= path_variable.size()) {
    auto colon = path_variable.find(':', start);
    if (colon == std::string::npos) colon = path_variable.size();
    std::string directory = path_variable.substr(start, colon - start);
    if (directory.empty()) directory = ".";
    if (executable_problem(directory + "/" + name).empty()) return true;
    start = colon + 1;
  }
  return false;
}

bool all_hosts_local(const pm::BootRequest& request) {
  const auto& hosts = request.process_restriction().allowed_hosts();
  if (hosts.empty()) return true;  // the broker's default is localhost
  for (const auto& host : hosts)
    if (!is_local_host(host)) return false;
  return true;
}

}  // namespace

void refuse_duplicate_names(client::Client& client, const std::vector<pm::BootRequest>& requests) {
  std::map<std::pair<std::string, std::string>, std::string> taken;  // (session, name) -> who has it
  const auto existing = client.ps();
  for (const auto& process : existing.values()) {
    const auto& metadata = process.process_description().metadata();
    taken.emplace(std::make_pair(metadata.session(), metadata.name()),
                  std::string(process.status_code() == pm::ProcessInstance::RUNNING ? "a running" : "a dead") +
                      " process (uuid " + process.uuid().uuid() + ")");
  }
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& metadata = requests[i].process_description().metadata();
    const auto key = std::make_pair(metadata.session(), metadata.name());
    auto [existing, fresh] = taken.emplace(key, "process " + std::to_string(i + 1) + " of this boot");
    if (!fresh)
      problems.push_back("session " + quoted(metadata.session()) + " already has " + quoted(metadata.name()) + ": " +
                         existing->second);
  }
  if (problems.empty()) return;
  std::string text = problems[0];
  for (std::size_t i = 1; i < problems.size() && i < 10; ++i) text += "; " + problems[i];
  if (problems.size() > 10) text += "; and " + std::to_string(problems.size() - 10) + " more";
  throw BootRefused(text +
                    " (names must be unique within a session: flush a dead one, pick another name, or "
                    "give --allow-duplicates)");
}

void refuse_missing_local_files(const std::string& broker_address, const std::vector<pm::BootRequest>& requests) {
  if (!is_local_endpoint(broker_address)) return;
  const char* own_path = std::getenv("PATH");
  for (const auto& request : requests) {
    if (!all_hosts_local(request)) continue;
    const auto& description = request.process_description();
    const std::string who = quoted(description.metadata().name()) + ": ";
    const auto& directory = description.process_execution_directory();
    if (!directory.empty()) {
      struct stat status;
      if (::stat(directory.c_str(), &status) != 0)
        throw BootRefused(who + "execution directory " + directory + " does not exist on this machine");
      if (!S_ISDIR(status.st_mode)) throw BootRefused(who + "execution directory " + directory + " is not a directory");
    }
    const auto env_path = description.env().find("PATH");
    const std::string path_variable =
        env_path != description.env().end() ? env_path->second : std::string(own_path ? own_path : "/usr/bin:/bin");
    for (const auto& command : description.executable_and_arguments()) {
      const auto& exec = command.exec();
      if (exec.empty()) continue;  // the broker says what is wrong with it
      if (exec.find('/') == std::string::npos) {
        if (!is_bash_builtin(exec) && !found_on_path(exec, path_variable))
          throw BootRefused(who + "command " + quoted(exec) + " is not found on PATH (" + path_variable +
                            ") on this machine, where the broker runs it");
        continue;
      }
      if (exec[0] != '/' && directory.empty()) continue;  // relative to the broker's own directory
      const std::string path = exec[0] == '/' ? exec : directory + "/" + exec;
      if (auto problem = executable_problem(path); !problem.empty())
        throw BootRefused(who + "executable " + path + " " + problem + " on this machine, where the broker runs it");
    }
  }
}

}  // namespace drunc::cli

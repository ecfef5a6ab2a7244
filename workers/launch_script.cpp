#include "launch_script.hpp"

namespace drunc::workers {
namespace {

void require_no_nul(std::string_view text, std::string_view what) {
  if (text.find('\0') != std::string_view::npos)
    throw InvalidDescription(std::string(what) + " contains a NUL byte, which no process argument can carry");
}

}  // namespace

std::string shell_quote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  quoted += '\'';
  return quoted;
}

bool is_shell_identifier(std::string_view name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

std::string build_launch_script(const dunedaq::druncschema::ProcessDescription& description,
                                const Incarnation& incarnation) {
  if (description.executable_and_arguments_size() == 0)
    throw InvalidDescription("executable_and_arguments is empty: nothing to run");

  // bash ignores SIGQUIT, so without this trap a kill would end only the
  // command running and the script would go on with the next one. The trap
  // also keeps this shell as the parent of every command (bash does not exec
  // the last command while a trap is set), so no command inherits tee as a child.
  std::string script = "trap 'exit $?' QUIT TERM\nexec </dev/null\n";
  const auto& log_path = description.process_logs_path();
  if (!log_path.empty()) {
    require_no_nul(log_path, "process_logs_path");
    require_no_nul(description.metadata().name(), "metadata.name");  // it goes into the header line
    const std::string header = "=== drunc-zmq: " + description.metadata().name() + " uuid " + incarnation.uuid +
                               " generation " + std::to_string(incarnation.generation) + " on " +
                               incarnation.host + " at " + incarnation.started_at + " ===";
    script += "drunc_log=" + shell_quote(log_path) + "\n";
    script += "printf '%s\\n' " + shell_quote(header) + " >>\"$drunc_log\"\n";
    // tee ignores the stop signals so that it outlives the process and keeps
    // its last words (a graceful shutdown on SIGQUIT); it ends at end of
    // output, or with the group's SIGKILL.
    script += "exec > >(trap '' INT QUIT TERM HUP; exec tee -a -- \"$drunc_log\") 2>&1\n";
    script += "unset drunc_log\n";
  } else {
    script += "exec 2>&1\n";
  }

  const auto& directory = description.process_execution_directory();
  if (!directory.empty()) {
    require_no_nul(directory, "process_execution_directory");
    script += "cd -- " + shell_quote(directory) + " || exit 126\n";
  }

  for (const auto& [name, value] : description.env()) {
    if (!is_shell_identifier(name))
      throw InvalidDescription(std::string("env name \"").append(name).append("\" is not a valid environment variable name"));
    require_no_nul(value, "env value of " + name);
    script += "export " + name + "=" + shell_quote(value) + "\n";
  }

  for (const auto& command : description.executable_and_arguments()) {
    if (command.exec().empty()) throw InvalidDescription("an ExecAndArgs has an empty exec");
    require_no_nul(command.exec(), "exec");
    std::string line = shell_quote(command.exec());
    for (const auto& argument : command.args()) {
      require_no_nul(argument, "argument");
      line += ' ';
      line += shell_quote(argument);
    }
    script += line + "\n";
  }
  return script;
}

}  // namespace drunc::workers

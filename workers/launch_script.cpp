#include "launch_script.hpp"

#include <ctime>

namespace drunc::workers {
namespace {

void require_no_nul(std::string_view text, std::string_view what) {
  if (text.find('\0') != std::string_view::npos)
    throw InvalidDescription(std::string(what) + " contains a NUL byte, which no process argument can carry");
}

// The last word of the line just before the first command (see kPreamble).
constexpr std::string_view kCommandFollows = "drunc-command-follows";

// Signals, then the lifeline. bash ignores SIGQUIT, so without the traps a
// kill would end only the command running and the script would go on with
// the next one. A trap also keeps this shell as the parent of every command
// (bash does not exec the last command while a trap is set), so no command
// inherits tee as a child.
//
// Which status a kill leaves: a trap runs between commands, with $? and $_
// (the last word) of the one that just ended. Before any command has started,
// $? is a setup line's 0, so the script exits 128+N as the signal would have
// ended it. drunc_started is set by the line right before the first command,
// whose last word is kCommandFollows: a signal that comes between it and the
// command still sees that word. Once a command has run (it got the signal
// too, being in the group), its own status is the script's.
//
// The status record (only when the launcher names a file, on_broker_exit
// "keep"): the EXIT trap writes the script's exit status there, so that a
// broker that was not there to see the exit reads it later. Not with a
// lifeline (whose EXIT trap it would replace): a process with a lifeline dies
// with its broker.
//
// The watcher (started only when the launcher passes a lifeline) sits in the
// process group and reads the lifeline, a pipe whose write end only the
// process manager holds: when the manager dies, even by SIGKILL, the kernel
// closes it, the read ends, and the watcher kills the whole group. As a
// background job it ignores SIGQUIT, so a kill's SIGQUIT does not end it;
// the EXIT trap ends and reaps it, so that once the script is over the watcher
// is not mistaken for something left behind in the group (quietly: bash
// reports a job killed by SIGKILL on stderr, which is the process's log).
constexpr std::string_view kPreamble = R"(drunc_on_signal() {
  if [ -z "${drunc_started-}" ] || [ "$3" = drunc-command-follows ]; then exit "$1"; fi
  exit "$2"
}
trap 'drunc_on_signal 131 "$?" "$_"' QUIT
trap 'drunc_on_signal 143 "$?" "$_"' TERM
exec </dev/null
if [ -n "${drunc_lifeline-}" ]; then
  { read -r _ <&7; kill -KILL 0; } >/dev/null 2>&1 8>&- &
  drunc_watcher=$!
  exec 7<&-
  trap '{ kill -KILL "$drunc_watcher"; wait "$drunc_watcher"; } 2>/dev/null' EXIT
fi
[ -z "${drunc_status-}" ] || trap 'printf "%s\n" "$?" >"$drunc_status"' EXIT
unset drunc_lifeline
)";
static_assert(kPreamble.find(kCommandFollows) != std::string_view::npos);

// With kLogFd from the launcher (which opened the file with O_NOFOLLOW and
// wrote the header), the script only uses it. Without (over SSH), it opens
// the file itself with the same rules, as well as a shell can: missing
// directories 0750, a new file 0640 (umask 027, in a subshell so that the
// commands keep theirs), no symbolic link, a regular file only, the header
// written, or a message on the output and status kLogFileStatus (125).
// tee ignores the stop signals so that it outlives the process and keeps its
// last words (a graceful shutdown on SIGQUIT); it ends at end of output, or
// with the group's SIGKILL.
constexpr std::string_view kLogSetup = R"(if [ -z "${drunc_log_fd-}" ]; then
  drunc_log_refused() { printf 'drunc-zmq: cannot log to %s: %s\n' "$drunc_log" "$1"; exit 125; }
  case $drunc_log in */*) drunc_dir=${drunc_log%/*}; drunc_dir=${drunc_dir:-/} ;; *) drunc_dir=. ;; esac
  [ ! -L "$drunc_log" ] || drunc_log_refused 'it is a symbolic link'
  (umask 027 && mkdir -p -- "$drunc_dir" && { [ -e "$drunc_log" ] || : >>"$drunc_log"; }) 2>/dev/null ||
    drunc_log_refused 'cannot create it or its directory'
  [ -f "$drunc_log" ] && [ ! -L "$drunc_log" ] || drunc_log_refused 'it is not a regular file'
  { exec 8>>"$drunc_log"; } 2>/dev/null || drunc_log_refused 'cannot open it'
  printf '%s\n' "$drunc_log_header" >&8 2>/dev/null || drunc_log_refused 'cannot write to it'
  unset -f drunc_log_refused
  unset drunc_dir
fi
exec > >(trap '' INT QUIT TERM HUP; exec tee -a /dev/fd/8) 2>&1 8>&-
unset drunc_log drunc_log_header drunc_log_fd
)";

constexpr std::string_view kLogPathPrefix = "drunc_log=";
constexpr std::string_view kLogHeaderPrefix = "drunc_log_header=";

}  // namespace

bool is_shell_identifier(std::string_view name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name)
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

Incarnation incarnation_of(const drunc_zmq::internal::Launch& launch) {
  return {launch.uuid(), launch.generation(), launch.allowed_host(), local_time_text()};
}

std::string local_time_text() {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::tm local{};
  ::localtime_r(&now, &local);
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %z", &local);
  return text;
}

void check_description(const dunedaq::druncschema::ProcessDescription& description) {
  if (description.executable_and_arguments_size() == 0)
    throw InvalidDescription("executable_and_arguments is empty: nothing to run");
  if (!description.process_logs_path().empty()) {
    require_no_nul(description.process_logs_path(), "process_logs_path");
    require_no_nul(description.metadata().name(), "metadata.name");  // it goes into the header line
  }
  if (!description.process_execution_directory().empty())
    require_no_nul(description.process_execution_directory(), "process_execution_directory");
  for (const auto& [name, value] : description.env()) {
    if (!is_shell_identifier(name))
      throw InvalidDescription(
          std::string("env name \"").append(name).append("\" is not a valid environment variable name"));
    require_no_nul(value, "env value of " + name);
  }
  for (const auto& command : description.executable_and_arguments()) {
    if (command.exec().empty()) throw InvalidDescription("an ExecAndArgs has an empty exec");
    require_no_nul(command.exec(), "exec");
    for (const auto& argument : command.args()) require_no_nul(argument, "argument");
  }
}

std::optional<LogFile> log_file_of(const dunedaq::druncschema::ProcessDescription& description,
                                   const Incarnation& incarnation) {
  if (description.process_logs_path().empty()) return std::nullopt;
  return LogFile{description.process_logs_path(), "=== drunc-zmq: " + description.metadata().name() + " uuid " +
                                                      incarnation.uuid + " generation " +
                                                      std::to_string(incarnation.generation) + " on " +
                                                      incarnation.host + " at " + incarnation.started_at + " ==="};
}

std::string build_launch_script(const dunedaq::druncschema::ProcessDescription& description,
                                const Incarnation& incarnation) {
  check_description(description);
  std::string script(kPreamble);
  if (const auto log = log_file_of(description, incarnation)) {
    script.append(kLogPathPrefix).append(shell_quote(log->path)).append("\n");
    script.append(kLogHeaderPrefix).append(shell_quote(log->header)).append("\n");
    script += kLogSetup;
  } else {
    script += "exec 2>&1\n";
  }

  const auto& directory = description.process_execution_directory();
  if (!directory.empty()) script += "cd -- " + shell_quote(directory) + " || exit 126\n";
  for (const auto& [name, value] : description.env()) script += "export " + name + "=" + shell_quote(value) + "\n";

  script.append(": \"${drunc_started:=").append(kCommandFollows).append("}\"\n");
  for (const auto& command : description.executable_and_arguments()) {
    std::string line = shell_quote(command.exec());
    for (const auto& argument : command.args()) {
      line += ' ';
      line += shell_quote(argument);
    }
    script += line + "\n";
  }
  return script;
}

std::string launcher_prologue(bool lifeline, bool log_fd, const std::string& status_path) {
  std::string prologue;
  if (lifeline) prologue += "drunc_lifeline=1\n";
  if (log_fd) prologue += "drunc_log_fd=1\n";
  if (!status_path.empty()) prologue += "drunc_status=" + shell_quote(status_path) + "\n";
  return prologue;
}

}  // namespace drunc::workers

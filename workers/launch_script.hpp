// The one place that turns a ProcessDescription into the bash script that
// runs it. The broker sends the description (Launch, internal.proto); each
// backend that runs processes through bash builds this same script where it
// runs it: the local launcher for `bash -c`, the SSH worker inside its remote
// wrapper (ssh/remote_command.hpp). Only how it is run differs.
//
// What the script does, in order:
//   1. traps SIGQUIT and SIGTERM (bash ignores SIGQUIT otherwise): a kill
//      before any command has started ends the script with 128+N; once a
//      command has run, with that command's own status;
//   2. if the launcher gave it a lifeline (kLifelineFd, see launcher_prologue),
//      starts a watcher in its process group that kills the whole group when
//      the lifeline reaches end of file: the process manager is gone;
//      or, if it gave a status file instead, has the EXIT trap record the
//      script's exit status there;
//   3. opens process_logs_path and appends a header line for this
//      incarnation, unless the launcher did both and handed it the file as
//      kLogFd; on its own it creates missing directories 0750 and the file
//      0640, and refuses a symbolic link or anything but a regular file
//      (message on the output, status kLogFileStatus);
//   4. sends stdout and stderr through `tee -a` into the log file (never
//      truncated, so a restart keeps the log of the crash) and on to the
//      script's own stdout, which the transport streams to the broker;
//   5. cd to process_execution_directory (status 126 if it cannot);
//   6. exports env;
//   7. runs each ExecAndArgs in turn; the script's exit status is the last one's.
// Every executable, argument, path and env value is single-quoted, so it
// reaches the process byte for byte: no splitting, no expansion, no injection.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "drunc_zmq/internal.pb.h"
#include "druncschema/process_manager.pb.h"
#include "wire/shell_quote.hpp"

namespace drunc::workers {

// A description that no script can run faithfully (an env name that is not a
// shell identifier, a NUL byte, no executable).
class InvalidDescription : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using wire::shell_quote;

bool is_shell_identifier(std::string_view name);

struct Incarnation {
  std::string uuid;
  std::uint32_t generation = 1;
  std::string host;        // the allowed_hosts entry it starts on, for the header line
  std::string started_at;  // human-readable time for the header line
};

// The incarnation a Launch names, started now.
Incarnation incarnation_of(const drunc_zmq::internal::Launch& launch);
// This machine's local time, as the header line shows it ("2026-12-02 15:44:53 +0000").
std::string local_time_text();

// Throws InvalidDescription if no script can run description faithfully:
// the broker refuses such a boot before trying any host.
void check_description(const dunedaq::druncschema::ProcessDescription& description);

std::string build_launch_script(const dunedaq::druncschema::ProcessDescription& description,
                                const Incarnation& incarnation);

// The descriptors a launcher may hand to the script (closed before any command runs).
inline constexpr int kLifelineFd = 7;  // read end of a pipe that nobody writes: EOF = the manager is gone
inline constexpr int kLogFd = 8;       // the log file, opened for appending, header already written
// Exit status of a script that could not open or write its log file itself.
inline constexpr int kLogFileStatus = 125;

// Lines a launcher puts before the script to say which of these fds it gives,
// and, with status_path, where the script records its exit status as it ends
// ("N\n"; on_broker_exit "keep": read back by a broker that did not see the exit).
std::string launcher_prologue(bool lifeline, bool log_fd, const std::string& status_path = {});

// The log file the script of description writes, and the header line it
// starts with, for a launcher that opens the file itself (kLogFd); nothing
// when the description names no log file.
struct LogFile {
  std::string path;
  std::string header;  // without the newline
};
std::optional<LogFile> log_file_of(const dunedaq::druncschema::ProcessDescription& description,
                                   const Incarnation& incarnation);

}  // namespace drunc::workers

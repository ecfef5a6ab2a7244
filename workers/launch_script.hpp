// The one place that turns a ProcessDescription into the bash script that
// runs it. Every transport runs this same script: locally through
// `bash -c`, over SSH through the remote bash. Only how it is run differs.
//
// What the script does, in order:
//   1. appends a header line for this incarnation to process_logs_path;
//   2. sends stdout and stderr through `tee -a` into process_logs_path (never
//      truncated, so a restart keeps the log of the crash) and on to the
//      script's own stdout, which the transport streams to the broker;
//   3. cd to process_execution_directory;
//   4. exports env;
//   5. runs each ExecAndArgs in turn; the script's exit status is the last one's.
// Every executable, argument, path and env value is single-quoted, so it
// reaches the process byte for byte: no splitting, no expansion, no injection.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "druncschema/process_manager.pb.h"

namespace drunc::workers {

// A description that no script can run faithfully (an env name that is not a
// shell identifier, a NUL byte, no executable).
class InvalidDescription : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `text` as one bash word that expands to exactly `text`.
std::string shell_quote(std::string_view text);

bool is_shell_identifier(std::string_view name);

struct Incarnation {
  std::string uuid;
  std::uint32_t generation = 1;
  std::string host;
  std::string started_at;  // human-readable time for the header line
};

std::string build_launch_script(const dunedaq::druncschema::ProcessDescription& description,
                                const Incarnation& incarnation);

}  // namespace drunc::workers

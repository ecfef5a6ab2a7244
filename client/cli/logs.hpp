// drunc-pm logs: the last lines of one process, and with --follow the lines
// that come after them, from the event feed, without gap or repeat at the seam.
#pragma once

#include <string>

#include "client.hpp"

namespace drunc::cli {

struct LogsOptions {
  dunedaq::druncschema::ProcessQuery query;
  int how_far = 100;
  std::string grep;  // RE2 pattern: only matching lines are printed
  bool follow = false;
  bool json = false;
};

// Returns an exit status.
int print_logs(client::Client& client, const LogsOptions& options);

}  // namespace drunc::cli

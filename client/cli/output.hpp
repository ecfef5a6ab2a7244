// How drunc-pm prints answers: aligned tables like drunc's shell, or JSON for scripts.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "druncschema/process_manager.pb.h"

namespace drunc::cli {

// Columns: session, friendly name, user, host, uuid, alive, exit-code; the
// long format adds the execution directory, log path and commands.
void print_process_table(const dunedaq::druncschema::ProcessInstanceList& list, bool long_format, std::ostream& out);

// One JSON document on one line, with the schema's field names.
std::string to_json(const google::protobuf::Message& message);

// Rows of cells, left-aligned columns separated by two spaces, header underlined.
void print_aligned(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

}  // namespace drunc::cli

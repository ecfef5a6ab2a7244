// How drunc-pm prints answers: aligned tables like drunc's shell, or JSON for scripts.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "druncschema/process_manager.pb.h"

namespace drunc::cli {

// --color: auto colours on a terminal unless NO_COLOR is set (and not
// empty, https://no-color.org); always and never override NO_COLOR.
enum class ColorMode { automatic, always, never };
bool use_color(ColorMode mode, int fd);

// Columns: session, friendly name, user, host, uuid, alive, exit-code; the
// long format adds the execution directory, log path and commands. With
// colour, alive True is green and False red (yellow when it exited 0).
void print_process_table(const dunedaq::druncschema::ProcessInstanceList& list, bool long_format, std::ostream& out,
                         bool color = false);

// One JSON document on one line, with the schema's field names.
std::string to_json(const google::protobuf::Message& message);

// Rows of cells, left-aligned columns separated by two spaces, header underlined.
// Cells may hold ANSI colour sequences: they take no width.
void print_aligned(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

}  // namespace drunc::cli

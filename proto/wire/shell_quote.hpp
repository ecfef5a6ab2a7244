// Quoting for a POSIX shell: the one place that does it, used by the launch
// script (workers/) and by drunc-pm to show commands (client/).
#pragma once

#include <string>
#include <string_view>

namespace drunc::wire {

// `text` as one shell word that expands to exactly `text` (single quotes;
// each ' written as '\'').
std::string shell_quote(std::string_view text);

}  // namespace drunc::wire

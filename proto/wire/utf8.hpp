// Protobuf `string` fields must hold valid UTF-8 (Python's protobuf refuses to
// parse anything else), but process output is arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

namespace drunc::wire {

bool is_valid_utf8(std::string_view bytes);

// bytes with every invalid sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view bytes);

}  // namespace drunc::wire

// Cuts a process's output stream into log lines fit for a LogLine: split on
// '\n', at most kMaxLineBytes per line (a longer line is cut into pieces, each
// but the last ending with kContinuationMarker), always valid UTF-8.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace drunc::workers {

class LineSplitter {
 public:
  static constexpr std::size_t kMaxLineBytes = 64 * 1024;
  static constexpr std::string_view kContinuationMarker = " [line continues]";

  // Appends the complete lines found in `bytes` to `lines`.
  void feed(std::string_view bytes, std::vector<std::string>& lines);
  // At end of stream: the partial last line, if any.
  void finish(std::vector<std::string>& lines);
  // Bytes fed and not yet given out as a line (the partial last line).
  std::size_t pending() const { return partial_.size(); }

 private:
  void emit_oversized_pieces(std::vector<std::string>& lines);

  std::string partial_;
};

}  // namespace drunc::workers

// Fuzz target: the line splitter that cuts a process's output into log lines
// (workers/line_splitter.*).
//
// Input: byte 0 chooses how the stream is cut into reads (its low 7 bits: a
// chunk size of 1 to 31 bytes, or 0: everything at once); if its top three
// bits are set, the stream starts with a run of 'x' that ends 0 to 15 bytes
// (byte 1) before LineSplitter::kMaxLineBytes, so that the cut of an oversized
// line falls inside the fuzzed bytes (only one input in eight: a 64 KiB line
// costs a hundred times more than a short one). The rest is the output.
//
// Invariants: every line is valid UTF-8 and holds no '\n'; it is made of at
// most kMaxLineBytes bytes of output (each invalid byte replaced by the three
// of U+FFFD), plus the continuation marker on the pieces of a longer line;
// however the stream is cut into reads, the lines are the same; for output
// that is valid UTF-8, no line is longer than kMaxLineBytes plus the marker,
// and the pieces put back together and joined with '\n' give the output back
// exactly.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "line_splitter.hpp"
#include "wire/utf8.hpp"

using drunc::workers::LineSplitter;

namespace {

// The first `whole` bytes in one read, the rest in reads of `chunk` bytes.
std::vector<std::string> split(std::string_view stream, std::size_t whole, std::size_t chunk) {
  LineSplitter splitter;
  std::vector<std::string> lines;
  splitter.feed(stream.substr(0, whole), lines);
  stream.remove_prefix(std::min(whole, stream.size()));
  while (!stream.empty()) {
    const auto part = stream.substr(0, chunk);
    splitter.feed(part, lines);
    stream.remove_prefix(part.size());
  }
  splitter.finish(lines);
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::size_t short_by = data[1] % 16;
  std::string stream;
  std::size_t filler = 0;  // fed in one read: 64 K reads of one byte would make each run slow
  if ((mode & 0xE0) == 0xE0) filler = LineSplitter::kMaxLineBytes - short_by;
  stream.assign(filler, 'x');
  stream.append(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::size_t chunk = (mode & 0x1f) == 0 ? stream.size() + 1 : (mode & 0x1f);

  const auto lines = split(stream, filler, chunk);
  const auto marker = LineSplitter::kContinuationMarker;
  const bool valid = drunc::wire::is_valid_utf8(stream);
  std::string rebuilt;
  bool continued = false;  // the previous line was a piece of a longer one
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view text = lines[i];
    FUZZ_CHECK(drunc::wire::is_valid_utf8(text));
    FUZZ_CHECK(text.find('\n') == std::string_view::npos);
    // At most kMaxLineBytes of output bytes, each invalid one replaced by the 3 bytes of U+FFFD.
    FUZZ_CHECK(text.size() <= 3 * LineSplitter::kMaxLineBytes + marker.size());
    if (!valid) continue;
    FUZZ_CHECK(text.size() <= LineSplitter::kMaxLineBytes + marker.size());
    // A piece is longer than any whole line can be, and ends with the marker.
    const bool piece = text.size() > LineSplitter::kMaxLineBytes;
    if (piece) {
      FUZZ_CHECK(text.substr(text.size() - marker.size()) == marker);
      text.remove_suffix(marker.size());
    }
    if (i > 0 && !continued) rebuilt += '\n';
    rebuilt += text;
    continued = piece;
  }
  // The same lines whatever the reads.
  FUZZ_CHECK(split(stream, stream.size(), 1) == lines);
  if (valid) {
    FUZZ_CHECK(!continued);  // the rest of a cut line always follows it
    // Lines end at '\n'; a stream ending with '\n' has no empty last line.
    std::string expected = stream;
    if (!expected.empty() && expected.back() == '\n') expected.pop_back();
    FUZZ_CHECK(rebuilt == expected);
  }
  return 0;
}

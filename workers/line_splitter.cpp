#include "line_splitter.hpp"

#include "wire/utf8.hpp"

namespace drunc::workers {

void LineSplitter::feed(std::string_view bytes, std::vector<std::string>& lines) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    partial_.append(bytes.substr(0, newline));
    emit_oversized_pieces(lines);
    if (newline == std::string_view::npos) break;
    lines.push_back(wire::to_valid_utf8(partial_));
    partial_.clear();
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::finish(std::vector<std::string>& lines) {
  if (partial_.empty()) return;
  lines.push_back(wire::to_valid_utf8(partial_));
  partial_.clear();
}

void LineSplitter::emit_oversized_pieces(std::vector<std::string>& lines) {
  while (partial_.size() > kMaxLineBytes) {
    std::size_t cut = kMaxLineBytes;
    // Do not cut inside a UTF-8 sequence: back off over continuation bytes.
    for (int k = 0; k < 3 && (static_cast<unsigned char>(partial_[cut]) & 0xC0) == 0x80; ++k) --cut;
    std::string piece = wire::to_valid_utf8(std::string_view(partial_).substr(0, cut));
    piece += kContinuationMarker;
    lines.push_back(std::move(piece));
    partial_.erase(0, cut);
  }
}

}  // namespace drunc::workers

// Base64 (RFC 4648, standard alphabet), as OpenSSH prints key fingerprints
// (unpadded) and as `base64 -d` reads (padded).
#pragma once

#include <string>
#include <string_view>

namespace drunc::workers::ssh {

inline std::string base64(std::string_view bytes, bool padded = true) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    auto byte = [&](std::size_t at) { return at < bytes.size() ? static_cast<unsigned char>(bytes[at]) : 0u; };
    const unsigned value = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(value >> 18) & 63];
    out += kAlphabet[(value >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(value >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[value & 63] : '=';
  }
  if (!padded) out.erase(out.find_last_not_of('=') + 1);
  return out;
}

}  // namespace drunc::workers::ssh

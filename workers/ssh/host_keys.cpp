#include "host_keys.hpp"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "base64.hpp"
#include "libssh2_handles.hpp"

namespace drunc::workers::ssh {
namespace {

int known_host_key_type(int host_key_type) {
  switch (host_key_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

std::string host_spec(const std::string& host, int port) {
  return port == 22 ? host : "[" + host + "]:" + std::to_string(port);
}

// Says once per process (not once per handshake) that a known_hosts line was skipped.
void warn_once(const std::string& file, int line_number, const std::string& why) {
  static std::mutex mutex;
  static std::set<std::pair<std::string, int>> warned;
  std::lock_guard lock(mutex);
  if (warned.emplace(file, line_number).second)
    spdlog::warn("{} line {}: {}; the line is ignored", file, line_number, why);
}

// Reads known_hosts files into `known` line by line, so that one line libssh2
// cannot parse costs only that line. Returns the revoked keys' base64 (lines
// marked @revoked), unpadded; @cert-authority lines are skipped (host
// certificates are not supported).
// *unreadable names a file that exists but cannot be read.
std::set<std::string> read_known_hosts(LIBSSH2_KNOWNHOSTS* known, const std::vector<std::string>& files,
                                       std::string* unreadable) {
  std::set<std::string> revoked;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) {
      std::error_code ignored;
      if (std::filesystem::exists(file, ignored)) *unreadable = file;
      continue;  // a missing file is normal: the defaults name files that may not exist
    }
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      const auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') continue;
      std::istringstream fields(line.substr(first));
      std::string marker;
      fields >> marker;  // split at spaces or tabs, as OpenSSH does
      if (marker == "@revoked") {
        // @revoked HOSTS KEYTYPE BASE64: that key is refused whatever the host.
        std::string hosts, type, key;
        if (fields >> hosts >> type >> key)
          revoked.insert(key.substr(0, key.find_last_not_of('=') + 1));
        else
          warn_once(file, number, "a @revoked line without a key");
        continue;
      }
      if (line[first] == '@') {
        warn_once(file, number, "markers other than @revoked are not supported");
        continue;
      }
      if (libssh2_knownhost_readline(known, line.c_str() + first, line.size() - first,
                                     LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
        warn_once(file, number, "not a known_hosts entry libssh2 can read");
    }
  }
  return revoked;
}

}  // namespace

std::string host_key_fingerprint(LIBSSH2_SESSION* session) {
  const char* hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256);
  if (!hash) return "SHA256:?";
  return "SHA256:" + base64(std::string_view(hash, 32), /*padded=*/false);
}

std::string check_host_key(LIBSSH2_SESSION* session, const SshSettings& settings, const std::string& host, int port) {
  const std::string where = host_spec(host, port);
  if (settings.host_key_policy == HostKeyPolicy::off) {
    spdlog::warn("host key of {} not checked (host_key_policy off): {}", where, host_key_fingerprint(session));
    return {};
  }
  std::size_t key_length = 0;
  int key_type = 0;
  const char* key = libssh2_session_hostkey(session, &key_length, &key_type);
  if (!key) return "host " + where + " offered no host key";

  KnownHosts known(libssh2_knownhost_init(session));
  if (!known) return "cannot check the host key of " + where + ": " + last_error(session);
  std::vector<std::string> files = settings.known_hosts_files;
  if (settings.host_key_policy == HostKeyPolicy::accept_new) files.push_back(settings.accepted_hosts_file);
  std::string unreadable;
  const auto revoked = read_known_hosts(known.get(), files, &unreadable);
  // Refused rather than skipped: under accept-new, a changed key would pass for a new one.
  if (!unreadable.empty()) return "cannot read " + unreadable + " to check the host key of " + where;
  if (revoked.contains(base64(std::string_view(key, key_length), /*padded=*/false)))
    return "host key of " + where + " (" + host_key_fingerprint(session) +
           ") is REVOKED (marked @revoked in known_hosts); refusing to connect";

  const int type_mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | known_host_key_type(key_type);
  // As OpenSSH: a host on another port than 22 is known only as "[host]:port".
  const std::string name = host_spec(host, port);
  auto check = [&](int mask) {
    libssh2_knownhost* found = nullptr;
    return libssh2_knownhost_checkp(known.get(), name.c_str(), -1, key, key_length, mask, &found);
  };
  int result = check(type_mask);
  if (result == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
    // libssh2 skips entries of other key types: a host known with another type
    // of key that now offers this one has changed its key, as far as we know.
    for (int other : {LIBSSH2_KNOWNHOST_KEY_SSHRSA, LIBSSH2_KNOWNHOST_KEY_SSHDSS, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
                      LIBSSH2_KNOWNHOST_KEY_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ED25519})
      if (other != known_host_key_type(key_type) && check(LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                                          other) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
        result = LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
  }
  const std::string fingerprint = host_key_fingerprint(session);
  switch (result) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH: return {};
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
      return "host key of " + where + " has CHANGED: it offered " + fingerprint +
             ", which does not match known_hosts; refusing to connect (a changed key can mean an attack)";
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
      if (settings.host_key_policy == HostKeyPolicy::strict)
        return "host " + where + " is not in known_hosts (its key is " + fingerprint + "); host_key_policy is strict";
      break;
    default: return "cannot check the host key of " + where + ": " + last_error(session);
  }

  // accept-new: record the key in the broker's own file, then accept it.
  libssh2_knownhost* added = nullptr;
  const std::string spec = host_spec(host, port);
  if (libssh2_knownhost_addc(known.get(), spec.c_str(), nullptr, key, key_length, "added by drunc-zmq", 18, type_mask,
                             &added) != 0)
    return "cannot record the host key of " + where + ": " + last_error(session);
  char line[8192];
  std::size_t line_length = 0;
  if (libssh2_knownhost_writeline(known.get(), added, line, sizeof line, &line_length,
                                  LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
    return "cannot record the host key of " + where + ": " + last_error(session);
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(settings.accepted_hosts_file).parent_path(), ignored);
  std::ofstream file(settings.accepted_hosts_file, std::ios::app);
  file.write(line, static_cast<std::streamsize>(line_length));
  if (!file) return "cannot write " + settings.accepted_hosts_file + " to record the host key of " + where;
  spdlog::info("accepted the new host key of {} ({}), recorded in {}", where, fingerprint,
               settings.accepted_hosts_file);
  return {};
}

}  // namespace drunc::workers::ssh

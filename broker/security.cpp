#include "security.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "config.hpp"
#include "wire/certificate.hpp"
#include "wire/topic.hpp"

namespace drunc::broker {
namespace {

std::string stem(const std::string& file_name) {
  const auto dot = file_name.find('.');
  return dot == std::string::npos || dot == 0 ? file_name : file_name.substr(0, dot);
}

// name and value must survive a ZAP metadata frame and a log line unchanged.
bool printable(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

ClientIdentity identity_from(const wire::Certificate& certificate, const std::string& path,
                             const std::string& file_name) {
  auto fail = [&](const std::string& message) -> ConfigError {
    return ConfigError("setting \"security.client_certificates\": " + path + ": " + message);
  };
  ClientIdentity identity;
  identity.public_key = certificate.public_key;
  identity.file = path;
  const auto& metadata = certificate.metadata;
  auto value = [&](const char* name) -> std::string {
    auto found = metadata.find(name);
    return found == metadata.end() ? std::string() : found->second;
  };
  identity.user = value("user");
  if (identity.user.empty()) identity.user = stem(file_name);
  if (!printable(identity.user)) throw fail("metadata user holds control characters");

  const std::string role = value("role");
  if (role.empty() || role == "observer")
    identity.role = Role::observer;
  else if (role == "operator")
    identity.role = Role::operator_;
  else if (role == "admin")
    identity.role = Role::admin;
  else
    throw fail("metadata role \"" + role + "\" must be observer, operator or admin");

  std::string sessions = value("sessions");
  if (sessions.empty() || sessions == "*") {
    identity.all_sessions = true;
  } else {
    std::size_t start = 0;
    while (start <= sessions.size()) {
      const auto comma = sessions.find(',', start);
      std::string session = sessions.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      session.erase(0, session.find_first_not_of(" \t"));
      session.erase(session.find_last_not_of(" \t") + 1);
      if (session == "*") throw fail("metadata sessions: \"*\" must stand alone");
      if (!session.empty()) identity.sessions.push_back(session);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (identity.sessions.empty()) throw fail("metadata sessions \"" + sessions + "\" names no session");
  }
  return identity;
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::observer: return "observer";
    case Role::operator_: return "operator";
    case Role::admin: return "admin";
  }
  return "?";
}

bool ClientIdentity::may_touch(const std::string& session) const {
  return all_sessions || std::find(sessions.begin(), sessions.end(), session) != sessions.end();
}

AccessList load_access_list(const std::string& directory) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory.c_str()), ::closedir);
  if (!dir)
    throw ConfigError("setting \"security.client_certificates\": cannot read the directory " + directory + ": " +
                      std::strerror(errno));
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.empty() || name.front() == '.') continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // the same merge order at every load

  AccessList list;
  std::unordered_map<std::string, bool> with_metadata;  // by key
  for (const auto& name : names) {
    const std::string path = directory + "/" + name;
    struct stat status {};
    if (::stat(path.c_str(), &status) != 0 || !S_ISREG(status.st_mode)) continue;
    wire::Certificate certificate;
    try {
      certificate = wire::parse_certificate(
          [&] {
            std::string text;
            std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "r"), std::fclose);
            if (!file) throw wire::CertificateError(path + ": cannot be read: " + std::strerror(errno));
            char buffer[4096];
            std::size_t n;
            while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
            return text;
          }(),
          path);
    } catch (const wire::CertificateError& error) {
      throw ConfigError(std::string("setting \"security.client_certificates\": ") + error.what());
    }
    if (!certificate.secret_key.empty())
      spdlog::warn("{} holds a client's secret key: only its public certificate belongs in {}", path, directory);
    ClientIdentity identity = identity_from(certificate, path, name);
    // The same key twice (say a public certificate from zcert and its secret
    // twin from zmq.auth, which writes metadata only there): the copy with
    // metadata wins; two copies with metadata must agree.
    const bool described = !certificate.metadata.empty();
    auto [existing, added] = list.emplace(identity.public_key, identity);
    if (added) {
      with_metadata[identity.public_key] = described;
      continue;
    }
    if (!described) continue;
    if (with_metadata[identity.public_key] &&
        (existing->second.user != identity.user || existing->second.role != identity.role ||
         existing->second.sessions != identity.sessions || existing->second.all_sessions != identity.all_sessions))
      throw ConfigError("setting \"security.client_certificates\": " + path + " and " + existing->second.file +
                        " hold the same key with different metadata");
    existing->second = identity;
    with_metadata[identity.public_key] = true;
  }
  for (const auto& [key, identity] : list)
    if (!with_metadata[key])
      spdlog::warn("{}: no metadata (user, role, sessions): {} is an observer of every session", identity.file,
                   identity.user);
  return list;
}

std::vector<std::string> granted_prefixes(const ClientIdentity& identity, const std::string& asked) {
  if (identity.all_sessions) return {asked};
  // The roots of every topic the identity may read.
  std::vector<std::string> roots = {std::string(wire::kBroadcastKind) + "/"};
  for (const auto& session : identity.sessions)
    for (auto kind : {wire::kLogKind, wire::kStateKind})
      roots.push_back(std::string(kind) + "/" + wire::encode_topic_field(session) + "/");
  std::vector<std::string> granted;
  for (const auto& root : roots) {
    if (asked.rfind(root, 0) == 0) return {asked};           // within one root: as asked
    if (root.rfind(asked, 0) == 0) granted.push_back(root);  // wider than the root: the root
  }
  return granted;
}

bool role_allows(Role role, wire::Command command) {
  using wire::Command;
  switch (command) {
    case Command::describe:
    case Command::ps:
    case Command::logs: return true;
    case Command::boot:
    case Command::kill:
    case Command::restart:
    case Command::flush: return role != Role::observer;
    case Command::terminate: return role == Role::admin;
  }
  return false;
}

bool changes_state(wire::Command command) {
  using wire::Command;
  return command == Command::boot || command == Command::kill || command == Command::restart ||
         command == Command::flush || command == Command::terminate;
}

bool is_local_endpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string address = endpoint.substr(6);
  // "tcp://source;address:port" binds only with a source on connect; take the last part.
  if (const auto semicolon = address.rfind(';'); semicolon != std::string::npos)
    address = address.substr(semicolon + 1);
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  address = address.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']')
    address = address.substr(1, address.size() - 2);
  if (address == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;  // "*", an interface name, a host name: may be reachable from the network
}

}  // namespace drunc::broker

// Who may connect and what each may do (docs/PROTOCOL.md, "Security";
// docs/CONFIG.md, "security"): the settings, the list of admitted client
// keys with their roles and sessions, and the rules that check a request
// against them. Pure logic, no sockets: the ZAP handler and the broker loop
// use it.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "wire/envelope.hpp"

namespace drunc::broker {

struct SecuritySettings {
  enum class Mode { none, curve };
  Mode mode = Mode::none;
  std::string server_certificate;   // the server's secret certificate file (curve)
  std::string client_certificates;  // directory of admitted client public certificates (curve)
  bool allow_insecure_network = false;
};

// observer: describe, ps, logs, the feed. operator: also boot, kill, restart,
// flush. admin: also terminate.
enum class Role { observer, operator_, admin };
const char* role_name(Role role);

// One admitted client key, from a certificate's metadata.
struct ClientIdentity {
  std::string public_key;  // Z85
  std::string user;        // metadata "user"; the file's name without extension if missing
  Role role = Role::observer;
  bool all_sessions = false;          // sessions = "*"
  std::vector<std::string> sessions;  // otherwise, the sessions it may touch
  std::string file;                   // where it was read, for the log

  bool may_touch(const std::string& session) const;
};

// The admitted keys, by Z85 public key.
using AccessList = std::unordered_map<std::string, ClientIdentity>;

// Reads every certificate in directory (hidden files skipped). Throws ConfigError naming the file that
// cannot be read or whose metadata is invalid. Keys found twice (a public
// certificate and its secret twin) are merged.
AccessList load_access_list(const std::string& directory);

// What a subscription to the topic prefix asked becomes for identity on the
// event feed: unchanged for every session ("*"); otherwise narrowed to its
// sessions' log and state topics (and the broadcasts): "" or "log/" become
// "log/S/" for each of its sessions S, "log/S/x" stays if S is one of them,
// "log/T/" of another session T becomes nothing.
std::vector<std::string> granted_prefixes(const ClientIdentity& identity, const std::string& asked);

// May role run command at all (sessions aside)?
bool role_allows(Role role, wire::Command command);
// Does command change anything (audited, published as a CommandNotificationMessage)?
bool changes_state(wire::Command command);

// True for endpoints no other machine can reach: tcp on a loopback address
// (127.0.0.0/8, ::1, localhost), ipc:// and inproc://.
bool is_local_endpoint(const std::string& endpoint);

}  // namespace drunc::broker

// One SSH connection of an SSH worker: the name lookup's result, the TCP
// connect (address after address), the handshake, the host key check, the
// authentication (key files, then ssh-agent), and the keepalives that tell a
// silent server from a busy one. Non-blocking: each call goes as far as it
// can and says what it waits for. Owned by the pool (pool.hpp), on the
// worker's thread; the fd's place in the epoll set is the pool's business.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ssh/libssh2_handles.hpp"
#include "ssh/ssh_settings.hpp"

namespace drunc::workers::ssh {

using Clock = std::chrono::steady_clock;

struct RemoteProcess;

// Where a connection goes: processes to the same endpoint share connections.
struct Endpoint {
  std::string user;
  std::string host;
  int port = 22;
  std::string text() const { return user + "@" + host + ":" + std::to_string(port); }
  bool operator==(const Endpoint&) const = default;
};

struct Connection {
  enum class Phase { resolving, connecting, handshaking, authenticating, ready };

  Endpoint endpoint;
  int fd = -1;
  std::uint64_t resolve_id = 0;  // of its name lookup, while resolving
  // The host's addresses not tried yet (IPv6 and IPv4, in getaddrinfo's
  // order), and why the ones tried failed.
  std::deque<std::pair<sockaddr_storage, socklen_t>> addresses;
  std::string connect_failures;
  // When the address being tried gives way to the next one: each address gets
  // an equal share of what is left of `deadline`, so a silent first address
  // (a blackholed IPv6 route) leaves time for the others.
  Clock::time_point address_deadline;
  std::string address;  // the one being tried, as text, for error messages
  Session session;
  Phase phase = Phase::connecting;
  Clock::time_point deadline;                         // of connecting, handshaking and authenticating
  std::size_t next_key = 0;                           // index in key_files of the key to try next
  Agent agent;                                        // ssh-agent, tried after the key files
  libssh2_agent_publickey* agent_identity = nullptr;  // the agent identity being tried
  bool agent_done = false;
  std::string auth_failures;  // why each key was refused, for the error message
  bool full = false;          // the server refused a channel (MaxSessions)
  std::vector<RemoteProcess*> processes;
  Clock::time_point idle_since;
  Clock::time_point next_keepalive;
  Clock::time_point last_inbound;  // when the server last sent anything (keepalives ask it to)
  std::uint32_t watched = 0;       // epoll events registered
  bool registered = false;         // in the epoll set
  bool closed = false;             // failed or idle: to be removed
  bool pump_again = false;         // libssh2 may hold data read for its channels: pump on the next turn
};

// A new connection to endpoint, its session non-blocking, its deadline
// connect_timeout from now; nothing connected yet. Throws SshError if libssh2
// cannot make a session.
std::unique_ptr<Connection> new_connection(const Endpoint& endpoint, const SshSettings& settings);

// Starts connecting to the next address of connection.addresses (closing the
// previous socket, if any: the caller has taken it out of its epoll set).
// False when none is left: connection_failures says why each failed.
bool connect_next_address(Connection& connection, const SshSettings& settings);

// What advance_setup reached.
enum class Setup {
  waiting,       // on the server, or on the name lookup: call again when the fd is ready
  ready,         // authenticated: channels may open
  next_address,  // this address failed (noted in connect_failures): try the next one
  failed,        // the connection cannot be made: reason says why
};
// Connecting, handshake, host key, authentication, as far as it goes now.
Setup advance_setup(Connection& connection, const SshSettings& settings, std::string& reason);

// Says goodbye if the socket takes it at once, then shuts the socket down so
// that freeing the session cannot wait on a silent peer, and frees it all.
void close_connection(Connection& connection);

// The epoll events connection needs now: its input while it has something to
// read it for, its output while connecting or while libssh2 waits to write.
std::uint32_t wanted_events(const Connection& connection);

// Keepalives on a ready connection with processes, at keepalive_interval;
// a server silent for three intervals is gone, even when its kernel still
// acknowledges (a hung host, a stopped sshd). False, with reason, if it is.
// sent: a keepalive went out (the connection should be pumped).
bool keep_alive(Connection& connection, const SshSettings& settings, Clock::time_point now, bool& sent,
                std::string& reason);

}  // namespace drunc::workers::ssh

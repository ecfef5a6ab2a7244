#include "ssh/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "ssh/host_keys.hpp"

namespace drunc::workers::ssh {
namespace {

std::string address_text(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text, sizeof text);
  else if (address.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text, sizeof text);
  return text;
}

void note_connect_failure(Connection& connection, const std::string& where, int error) {
  connection.connect_failures += std::string(connection.connect_failures.empty() ? "" : "; ") + "cannot connect to " +
                                 connection.endpoint.host + " (" + where + "): " + std::strerror(error);
}

// ssh-agent identities, one after another. False while waiting on the server.
bool try_agent(Connection& connection, const SshSettings& settings) {
  LIBSSH2_SESSION* session = connection.session.get();
  if (connection.agent_done || !settings.use_agent || !std::getenv("SSH_AUTH_SOCK")) return true;
  if (!connection.agent) {
    connection.agent.reset(libssh2_agent_init(session));
    // The agent is a local socket: these calls block briefly.
    if (!connection.agent || libssh2_agent_connect(connection.agent.get()) != 0 ||
        libssh2_agent_list_identities(connection.agent.get()) != 0) {
      connection.auth_failures += "; ssh-agent: " + last_error(session);
      connection.agent_done = true;
      return true;
    }
    if (libssh2_agent_get_identity(connection.agent.get(), &connection.agent_identity, nullptr) != 0) {
      connection.agent_done = true;
      return true;
    }
  }
  const auto& user = connection.endpoint.user;
  while (connection.agent_identity) {
    const int rc = libssh2_agent_userauth(connection.agent.get(), user.c_str(), connection.agent_identity);
    if (rc == LIBSSH2_ERROR_EAGAIN) return false;
    if (rc == 0) break;
    connection.auth_failures +=
        "; ssh-agent identity " +
        std::string(connection.agent_identity->comment ? connection.agent_identity->comment : "?") + ": " +
        last_error(session);
    libssh2_agent_publickey* next = nullptr;
    if (libssh2_agent_get_identity(connection.agent.get(), &next, connection.agent_identity) != 0) next = nullptr;
    connection.agent_identity = next;
  }
  connection.agent_done = true;
  return true;
}

}  // namespace

std::unique_ptr<Connection> new_connection(const Endpoint& endpoint, const SshSettings& settings) {
  auto connection = std::make_unique<Connection>();
  connection->endpoint = endpoint;
  connection->session.reset(libssh2_session_init());
  if (!connection->session) throw SshError("libssh2_session_init failed");
  libssh2_session_set_blocking(connection->session.get(), 0);
  connection->deadline = Clock::now() + settings.connect_timeout;
  return connection;
}

bool connect_next_address(Connection& connection, const SshSettings& settings) {
  if (connection.fd >= 0) {  // the previous address failed
    ::close(connection.fd);
    connection.fd = -1;
    connection.registered = false;
  }
  while (!connection.addresses.empty()) {
    const auto [address, length] = connection.addresses.front();
    connection.addresses.pop_front();
    const std::string where = address_text(address) + " port " + std::to_string(connection.endpoint.port);
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      note_connect_failure(connection, where, errno);
      continue;
    }
    // Dead peers are noticed by TCP itself within a few keepalive intervals.
    const int on = 1;
    const int idle = std::max(1, static_cast<int>(settings.keepalive_interval.count() / 1000));
    const int count = 3;
    const unsigned timeout_ms = static_cast<unsigned>(settings.keepalive_interval.count()) * 3;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 && errno != EINPROGRESS) {
      note_connect_failure(connection, where, errno);
      ::close(fd);
      continue;
    }
    connection.fd = fd;
    connection.address = where;
    const auto now = Clock::now();
    connection.address_deadline = now + (connection.deadline - now) / static_cast<int>(connection.addresses.size() + 1);
    return true;
  }
  return false;
}

Setup advance_setup(Connection& connection, const SshSettings& settings, std::string& reason) {
  if (connection.phase == Connection::Phase::resolving) return Setup::waiting;  // the pool moves it on
  LIBSSH2_SESSION* session = connection.session.get();
  const std::string where = connection.endpoint.host + ":" + std::to_string(connection.endpoint.port);
  if (connection.phase == Connection::Phase::connecting) {
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      note_connect_failure(connection, connection.address, error);
      return Setup::next_address;
    }
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    if (::getpeername(connection.fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) return Setup::waiting;
    connection.phase = Connection::Phase::handshaking;
  }
  if (connection.phase == Connection::Phase::handshaking) {
    const int rc = libssh2_session_handshake(session, connection.fd);
    if (rc == LIBSSH2_ERROR_EAGAIN) return Setup::waiting;
    if (rc != 0) {
      reason = "SSH handshake with " + where + " failed: " + last_error(session);
      return Setup::failed;
    }
    reason = check_host_key(session, settings, connection.endpoint.host, connection.endpoint.port);
    if (!reason.empty()) return Setup::failed;
    connection.phase = Connection::Phase::authenticating;
  }
  if (connection.phase == Connection::Phase::authenticating) {
    const auto& user = connection.endpoint.user;
    while (!libssh2_userauth_authenticated(session) && connection.next_key < settings.key_files.size()) {
      const auto& key = settings.key_files[connection.next_key];
      if (!std::filesystem::exists(key)) {
        ++connection.next_key;
        continue;
      }
      const int rc = libssh2_userauth_publickey_fromfile_ex(session, user.c_str(), static_cast<unsigned>(user.size()),
                                                            nullptr, key.c_str(), nullptr);
      if (rc == LIBSSH2_ERROR_EAGAIN) return Setup::waiting;
      if (rc != 0) connection.auth_failures += "; key " + key + ": " + last_error(session);
      ++connection.next_key;
    }
    if (!libssh2_userauth_authenticated(session) && !try_agent(connection, settings)) return Setup::waiting;
    if (!libssh2_userauth_authenticated(session)) {
      const std::string tried =
          connection.auth_failures.empty() ? "; no key file found and no agent identity" : connection.auth_failures;
      reason = "authentication as " + user + " on " + where + " failed" + tried;
      return Setup::failed;
    }
    connection.phase = Connection::Phase::ready;
    connection.agent.reset();
    libssh2_keepalive_config(session, 1,
                             static_cast<unsigned>(std::max<long>(1, settings.keepalive_interval.count() / 1000)));
    connection.next_keepalive = Clock::now() + settings.keepalive_interval;
    connection.last_inbound = Clock::now();
    connection.idle_since = Clock::now();
    spdlog::debug("ssh: connected to {}", connection.endpoint.text());
  }
  return Setup::ready;
}

void close_connection(Connection& connection) {
  connection.agent.reset();  // the agent belongs to the session
  if (connection.session) libssh2_session_disconnect(connection.session.get(), "drunc-zmq closing");
  if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_RDWR);
  connection.session.reset();
  if (connection.fd >= 0) ::close(connection.fd);
  connection.fd = -1;
}

std::uint32_t wanted_events(const Connection& connection) {
  // An idle ready connection has nothing to read its input for: watching it
  // would wake the loop forever (level-triggered). Errors are still reported.
  const bool idle = connection.phase == Connection::Phase::ready && connection.processes.empty();
  std::uint32_t wanted = idle ? 0u : static_cast<std::uint32_t>(EPOLLIN);
  if (connection.phase == Connection::Phase::connecting ||
      (libssh2_session_block_directions(connection.session.get()) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
    wanted |= EPOLLOUT;
  return wanted;
}

bool keep_alive(Connection& connection, const SshSettings& settings, Clock::time_point now, bool& sent,
                std::string& reason) {
  sent = false;
  if (now - connection.last_inbound > 3 * settings.keepalive_interval + std::chrono::milliseconds(500)) {
    reason = "no answer from " + connection.endpoint.host + " for " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - connection.last_inbound).count()) +
             " s (keepalives unanswered)";
    return false;
  }
  if (connection.next_keepalive > now) return true;
  int seconds_to_next = 0;
  const int rc = libssh2_keepalive_send(connection.session.get(), &seconds_to_next);
  if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN) {
    reason = "keepalive failed: " + last_error(connection.session.get());
    return false;
  }
  connection.next_keepalive = now + settings.keepalive_interval;
  sent = true;
  return true;
}

}  // namespace drunc::workers::ssh

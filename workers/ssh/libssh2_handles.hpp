// The one thin layer over libssh2: RAII handles, one error type carrying
// libssh2's own message, and library initialisation. Non-blocking use only:
// LIBSSH2_ERROR_EAGAIN is handled by the caller's poll loop, nowhere else.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <libssh2.h>

namespace drunc::workers::ssh {

class SshError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// libssh2_init once per process (thread-safe).
void initialise_library();

// libssh2's text for the session's last error, e.g. "Channel open failure (administratively prohibited)".
std::string last_error(LIBSSH2_SESSION* session);

// Frees the session; shut its socket down first (see close_connection in the worker).
struct SessionDeleter {
  void operator()(LIBSSH2_SESSION* session) const;
};
using Session = std::unique_ptr<LIBSSH2_SESSION, SessionDeleter>;

struct ChannelDeleter {
  void operator()(LIBSSH2_CHANNEL* channel) const;
};
using Channel = std::unique_ptr<LIBSSH2_CHANNEL, ChannelDeleter>;

struct KnownHostsDeleter {
  void operator()(LIBSSH2_KNOWNHOSTS* hosts) const { libssh2_knownhost_free(hosts); }
};
using KnownHosts = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsDeleter>;

struct AgentDeleter {
  void operator()(LIBSSH2_AGENT* agent) const {
    libssh2_agent_disconnect(agent);
    libssh2_agent_free(agent);
  }
};
using Agent = std::unique_ptr<LIBSSH2_AGENT, AgentDeleter>;

}  // namespace drunc::workers::ssh

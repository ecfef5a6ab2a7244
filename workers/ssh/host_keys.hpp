// Host-key checking against known_hosts files, with the configured policy
// (strict, accept-new, off). Called by an SSH worker after each handshake.
#pragma once

#include <string>

#include <libssh2.h>

#include "ssh_settings.hpp"

namespace drunc::workers::ssh {

// "SHA256:<base64>" of the session's host key, as OpenSSH prints it.
std::string host_key_fingerprint(LIBSSH2_SESSION* session);

// Empty when the server's key is accepted; else the reason, naming host and fingerprint.
// Under accept-new, an unknown key is appended to settings.accepted_hosts_file.
std::string check_host_key(LIBSSH2_SESSION* session, const SshSettings& settings, const std::string& host, int port);

}  // namespace drunc::workers::ssh

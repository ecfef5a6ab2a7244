// How the SSH backend connects: parsed by ssh_backend.cpp from the
// configuration's backends.ssh (or "ssh" and "hosts"; docs/CONFIG.md), read
// by the SSH workers.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace drunc::workers {

enum class HostKeyPolicy {
  strict,      // the host key must be in a known_hosts file
  accept_new,  // unknown keys are recorded in accepted_hosts_file; changed keys are refused
  off,         // no check (logged as a warning at every connection)
};

struct SshSettings {
  int workers = 2;           // SSH worker threads; hosts are spread over them
  std::string default_user;  // login user when ProcessMetadata.user is empty
  int default_port = 22;
  std::vector<std::string> key_files;          // private keys, tried in order
  bool use_agent = true;                       // also try ssh-agent when SSH_AUTH_SOCK is set
  std::vector<std::string> known_hosts_files;  // read, never written
  std::string accepted_hosts_file;             // accept-new records new keys here
  HostKeyPolicy host_key_policy = HostKeyPolicy::accept_new;
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect + handshake + authentication
  std::chrono::milliseconds keepalive_interval{5000};
  std::chrono::milliseconds idle_close{60000};  // an unused connection closes after this
  int max_parallel_handshakes_per_host = 8;     // OpenSSH's MaxStartups begins dropping at 10

  // Per-host login ("hosts": {"name": {"port": 2222, "user": "daq"}}).
  struct HostLogin {
    int port = 0;      // 0: default_port
    std::string user;  // empty: ProcessMetadata.user, then default_user
  };
  std::map<std::string, HostLogin> hosts;
};

}  // namespace drunc::workers

// Shared by the SSH integration tests: the private sshd that
// tests/fixtures/sshd.sh starts (CTest fixture "sshd"), broker settings that
// reach it, and helpers to find and kill what serves a remote process.
//
// The sshd listens on 127.0.0.2 to 127.0.0.5, port 2222, for user drunc-test;
// its state directory (DRUNC_TEST_SSHD_STATE, default /tmp/drunc-test-sshd)
// holds the client key, the known_hosts file and the listener's pid file.
// Remote processes run on this same machine, as drunc-test, so /proc shows
// them: tests find them by a marker in their command line.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"
#include "ssh/ssh_settings.hpp"

namespace test::ssh {

inline const std::vector<std::string> kHosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
inline constexpr int kPort = 2222;
inline constexpr const char* kUser = "drunc-test";
// An address on loopback where nothing listens.
inline constexpr const char* kNothingListens = "127.0.0.9:2222";

// The sshd state directory; fails the test if the sshd is not running.
std::string state_dir();
std::string client_key();
std::string known_hosts();
// The sshd listener's pid (from STATE/sshd.pid).
int listener_pid();

// A directory under /tmp, removed (with its content) at destruction. mode
// 01777 lets the remote user (drunc-test) write into it.
class TempDir {
 public:
  explicit TempDir(const std::string& base, std::filesystem::perms mode = std::filesystem::perms(0755));
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The SSH backend's settings in config, to adjust before the broker starts.
drunc::workers::SshSettings& ssh_settings(drunc::broker::Config& config);

// Settings that reach the test sshd: port 2222, user drunc-test (as
// ssh.default_user; requests also set metadata.user), the test key, no agent,
// the sshd's known_hosts, policy strict, accepted hosts in `scratch`.
void configure(drunc::broker::Config& config, const TempDir& scratch);

// boot_request with metadata.user = drunc-test and allowed_hosts = hosts.
pm::BootRequest remote_request(const std::string& name, const std::string& exec, const std::vector<std::string>& args,
                               const std::vector<std::string>& hosts, const std::string& session = "test");
// A process that says "ready" and becomes `sleep 300` with argv[0] = marker:
// one pid, found by the marker from its start to its end. Killed: 131.
pm::BootRequest marked_sleep(const std::string& name, const std::string& marker, const std::vector<std::string>& hosts,
                             const std::string& session = "test");

// Answer of a boot sent raw (no exception on an error flag).
pm::Response boot_response(drunc::client::Client& client, const pm::BootRequest& request);

// Waiting for several processes at once (Events::wait_for drops what it does not accept).
// The state event with this transition of each uuid.
std::map<std::string, pm::ProcessInstance> wait_for_states(Events& events, std::set<std::string> uuids,
                                                           const std::string& transition);
// The log line `text` from each uuid.
void wait_for_line_from_each(Events& events, std::set<std::string> uuids, const std::string& text);

// The sshd processes serving the connection that runs pid: the listener's
// child on pid's ancestry and the sshd processes below it on that ancestry.
// Empty if pid does not descend from the listener.
std::vector<int> sshd_chain_of(int pid);
// The listener's child (one per SSH connection) on pid's ancestry, or 0.
int connection_of(int pid);
// The listener's children now (one per connection, open or closing).
std::vector<int> connections();
void kill_hard(const std::vector<int>& pids);

// A TCP socket on 127.0.0.10 that listens and never accepts nor speaks:
// connections to it complete in the kernel and then hear nothing.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::string host_port() const;  // "127.0.0.10:PORT"
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Output (stdout) of a shell command; fails the test on a non-zero status
// unless allow_failure. status receives the exit status.
std::string run(const std::string& command, bool allow_failure = false, int* status = nullptr);

// A fresh ed25519 public key as "ssh-ed25519 AAAA..." (not the sshd's).
std::string other_host_key(const TempDir& scratch);
// The sshd's host key as "ssh-ed25519 AAAA...", and its fingerprint "SHA256:...".
std::string server_host_key();
std::string server_fingerprint();
// A known_hosts file: every test host with the sshd's key, except that a host
// in `replaced` gets the given key line instead, and one in `omitted` no line.
std::string write_known_hosts(const TempDir& scratch, const std::string& name,
                              const std::map<std::string, std::string>& replaced,
                              const std::set<std::string>& omitted = {});

// The drunc-broker program, run with a JSON configuration; its stdout and
// stderr are read until its "serving on" line, then drained in the background.
class BrokerProgram {
 public:
  BrokerProgram(const std::string& config_json, const TempDir& scratch);
  ~BrokerProgram();  // SIGTERM (SIGKILL after kPatience) if still running
  BrokerProgram(const BrokerProgram&) = delete;
  BrokerProgram& operator=(const BrokerProgram&) = delete;
  const std::string& control_endpoint() const { return control_; }
  const std::string& events_endpoint() const { return events_; }
  pid_t pid() const { return pid_; }
  void kill_hard();  // SIGKILL and reap
  int stop();        // SIGTERM; the exit status (-1 if it did not exit within kPatience: then SIGKILL)
  std::string output() const;

 private:
  void wait_until_serving();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string control_;
  std::string events_;
  std::string output_;
  mutable std::atomic<bool> stop_{false};
  std::thread drain_;
  mutable std::mutex mutex_;
};

// A private ssh-agent holding the test key, for as long as this object (or,
// if the test dies, this process) lives: a bash watches a pipe from us and
// kills the agent when it closes.
class Agent {
 public:
  explicit Agent(const TempDir& scratch);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
  pid_t pid_ = -1;
  int lifeline_ = -1;  // write end of the watcher's stdin
  int output_ = -1;
};

// A subscriber on a BrokerProgram whose subscription is known to be live (as Events).
class ProgramEvents {
 public:
  ProgramEvents(const BrokerProgram& broker, const std::vector<std::string>& prefixes);
  // The log line `text` from each uuid (subscribe to "log/").
  void wait_for_line_from_each(std::set<std::string> uuids, const std::string& text);

 private:
  drunc::client::Subscriber subscriber_;
};

}  // namespace test::ssh

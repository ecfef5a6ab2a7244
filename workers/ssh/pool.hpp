// The connections of one SSH worker, pooled per endpoint (user, host, port):
// every process to a host shares a connection until the server refuses
// another channel (OpenSSH's MaxSessions), then another one opens; at most
// max_parallel_handshakes_per_host are being set up at once to one host, and
// processes wait in a queue for one; names are looked up off the thread
// (resolver.hpp); an idle connection closes after idle_close. A channel
// refused on a connection with no other channel open (the server may not be
// done with channels that just closed) is tried again on another connection,
// a few times, before the start fails.
//
// Lives on the worker's thread, inside its loop: the loop hands it the fds it
// watches and its timers, and owns the processes (PoolOwner).
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "ssh/connection.hpp"
#include "ssh/remote_process.hpp"
#include "ssh/resolver.hpp"
#include "ssh/ssh_settings.hpp"

namespace drunc::workers::ssh {

// What the pool needs from the loop it lives in.
class PoolOwner {
 public:
  virtual ~PoolOwner() = default;
  // The epoll set.
  virtual void watch(int fd, std::uint32_t events) = 0;
  virtual void change_watch(int fd, std::uint32_t events) = 0;
  virtual void unwatch(int fd) = 0;
  // Reports about processes; start_failed and exited end the process (the
  // owner forgets it: Pool::forget, then destroys it).
  virtual void report(RemoteProcess& process, drunc_zmq::internal::WorkerReport& report) = 0;
  virtual void start_failed(RemoteProcess& process, const std::string& reason) = 0;
  virtual void exited(RemoteProcess& process, const drunc_zmq::internal::Exited& exited) = 0;
};

class Pool : private ChannelEvents {
 public:
  Pool(const SshSettings& settings, PoolOwner& owner);
  // Closes every connection: the processes (their channels) must be gone.
  ~Pool() override;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Puts process on a connection to its endpoint with room for one more
  // channel, opening one if needed (within the handshake limit), or queues it.
  void assign(RemoteProcess& process);
  // Takes process off its connection and the queue (it is about to go).
  void forget(RemoteProcess& process);
  // Moves connection on (setup, then every channel on it).
  void pump(Connection& connection);

  // The loop's parts: an fd is ready (false if it is not the pool's), work is
  // pending (pump without waiting), the next timer, timers due, and the
  // connections failed or idle removed (which may let queued processes go).
  bool on_ready(int fd, std::uint32_t events);
  bool pending() const;
  std::optional<Clock::time_point> next_timer() const;
  void fire_timers(Clock::time_point now);
  void pump_pending();
  void remove_closed_connections();

 private:
  // ChannelEvents: what advancing a channel leads to.
  void report(RemoteProcess& process, drunc_zmq::internal::WorkerReport& report) override;
  void start_failed(RemoteProcess& process, const std::string& reason) override;
  void exited(RemoteProcess& process, const drunc_zmq::internal::Exited& exited) override;
  void channel_refused(Connection& connection, RemoteProcess& process, bool alone) override;
  void connection_failed(Connection& connection, const std::string& reason) override;

  Connection* open_connection(const Endpoint& endpoint, std::string& error);
  void on_names_resolved();
  // Next address of connection, with its fd moved in the epoll set; fails it when none is left.
  void connect_next_address(Connection& connection);
  void detach(RemoteProcess& process);
  void watch(Connection& connection);
  int handshakes_in_progress(const Endpoint& endpoint) const;

  const SshSettings& settings_;
  PoolOwner& owner_;
  std::list<std::unique_ptr<Connection>> connections_;
  std::unordered_map<int, Connection*> connection_of_fd_;
  std::deque<RemoteProcess*> waiting_;  // for a connection with room (handshake limit reached)
  Resolver resolver_;
  std::unordered_map<std::uint64_t, Connection*> resolving_;  // by lookup id
  bool retry_waiting_ = false;                                // a connection became ready or closed: waiting_ may move
};

}  // namespace drunc::workers::ssh

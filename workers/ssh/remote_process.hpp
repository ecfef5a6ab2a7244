// One process on a remote host, in one SSH channel of a connection: the
// channel opened, the remote wrapper (remote_command.hpp) executed, its pid
// line read first from stderr (then Started), signal words written to its
// stdin, its output read, its exit status or signal taken when the channel
// closes. Non-blocking; advance() goes as far as it can.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drunc_zmq/internal.pb.h"
#include "line_splitter.hpp"
#include "ssh/connection.hpp"
#include "ssh/libssh2_handles.hpp"

namespace drunc::workers::ssh {

struct RemoteProcess {
  enum class Phase { waiting, opening, executing, running, closing };

  std::string uuid;
  std::uint32_t generation = 0;
  Endpoint endpoint;
  std::string command;               // the remote wrapper with the launch script
  Connection* connection = nullptr;  // null while waiting for one with room
  Channel channel;
  Phase phase = Phase::waiting;
  LineSplitter output;
  LineSplitter errors;
  std::vector<std::string> early_output;  // lines read before the pid: sent after Started
  std::string error_text;                 // stderr before the pid, for a StartFailed reason
  std::int64_t pid = 0;                   // > 0 once Started was reported
  std::string to_write;                   // signal words for the remote watcher
  std::optional<Clock::time_point> sigkill_at;
  int refused_alone = 0;  // channels refused on connections with no other channel
};

// What advancing a process's channel leads to, for its owner (the pool).
class ChannelEvents {
 public:
  virtual ~ChannelEvents() = default;
  // A report about process (uuid and generation are filled in).
  virtual void report(RemoteProcess& process, drunc_zmq::internal::WorkerReport& report) = 0;
  // The process ends here: it did not start, or it exited. It is gone after.
  virtual void start_failed(RemoteProcess& process, const std::string& reason) = 0;
  virtual void exited(RemoteProcess& process, const drunc_zmq::internal::Exited& exited) = 0;
  // The server refused the process a channel on connection; alone: no other
  // channel of it was open. It must go elsewhere.
  virtual void channel_refused(Connection& connection, RemoteProcess& process, bool alone) = 0;
  // The connection is broken, for every process on it.
  virtual void connection_failed(Connection& connection, const std::string& reason) = 0;
};

// One step of process on its ready connection: returns whether anything
// moved (a phase, bytes read or written), so that the pool pumps again.
bool advance(Connection& connection, RemoteProcess& process, ChannelEvents& events);

}  // namespace drunc::workers::ssh

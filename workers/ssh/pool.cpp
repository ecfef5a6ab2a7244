#include "ssh/pool.hpp"

#include <netdb.h>
#include <sys/epoll.h>

#include <algorithm>

#include <spdlog/spdlog.h>

namespace drunc::workers::ssh {
namespace {

namespace pb = drunc_zmq::internal;

// Channels refused, one after another, on connections with no other channel
// open, before the start fails: a server that takes none at all is told from
// one not yet done with channels that just closed.
constexpr int kMostRefusalsAlone = 3;

}  // namespace

Pool::Pool(const SshSettings& settings, PoolOwner& owner) : settings_(settings), owner_(owner) {
  owner_.watch(resolver_.fd(), EPOLLIN);
}

Pool::~Pool() {
  for (auto& connection : connections_) close_connection(*connection);
}

// ---- Processes on connections --------------------------------------------------

void Pool::assign(RemoteProcess& process) {
  for (auto& connection : connections_) {
    if (connection->closed || connection->full || !(connection->endpoint == process.endpoint)) continue;
    process.connection = connection.get();
    if (connection->processes.empty()) {  // idle until now: its input was not watched
      connection->last_inbound = Clock::now();
      connection->next_keepalive = Clock::now() + settings_.keepalive_interval;
    }
    connection->processes.push_back(&process);
    if (connection->phase == Connection::Phase::ready) pump(*connection);
    return;
  }
  if (handshakes_in_progress(process.endpoint) >= settings_.max_parallel_handshakes_per_host) {
    waiting_.push_back(&process);
    return;
  }
  std::string error;
  Connection* connection = open_connection(process.endpoint, error);
  if (!connection) {
    owner_.start_failed(process, error);
    return;
  }
  process.connection = connection;
  connection->processes.push_back(&process);
  pump(*connection);
}

void Pool::detach(RemoteProcess& process) {
  if (!process.connection) return;
  auto& list = process.connection->processes;
  list.erase(std::remove(list.begin(), list.end(), &process), list.end());
  if (list.empty()) process.connection->idle_since = Clock::now();
  // A channel has closed: the server may take another one.
  if (process.channel) process.connection->full = false;
  process.connection = nullptr;
}

void Pool::forget(RemoteProcess& process) {
  detach(process);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &process), waiting_.end());
}

void Pool::pump(Connection& connection) {
  connection.pump_again = false;
  if (connection.closed) return;
  if (connection.phase != Connection::Phase::ready) {
    std::string reason;
    switch (advance_setup(connection, settings_, reason)) {
      case Setup::waiting: break;
      case Setup::ready: retry_waiting_ = true; break;
      case Setup::next_address: connect_next_address(connection); break;
      case Setup::failed: connection_failed(connection, reason); break;
    }
    if (connection.phase != Connection::Phase::ready) {
      if (!connection.closed) watch(connection);
      return;
    }
  }
  // Every channel is tried, and tried again while anything moves: reading one
  // channel makes libssh2 read the socket, which can bring data for channels
  // already tried; no socket event would announce it.
  constexpr int kRounds = 8;
  bool moved = true;
  for (int round = 0; moved && round < kRounds; ++round) {
    moved = false;
    const auto processes = connection.processes;
    for (auto* process : processes) {
      if (connection.closed) return;
      moved |= advance(connection, *process, *this);
    }
  }
  // Still moving: the rest on the next turn, after other connections and the broker's commands.
  connection.pump_again = moved;
  if (!connection.closed) watch(connection);
}

// ---- What advancing a channel leads to -------------------------------------------

void Pool::report(RemoteProcess& process, pb::WorkerReport& report) { owner_.report(process, report); }

void Pool::start_failed(RemoteProcess& process, const std::string& reason) { owner_.start_failed(process, reason); }

void Pool::exited(RemoteProcess& process, const pb::Exited& exited) { owner_.exited(process, exited); }

void Pool::channel_refused(Connection& connection, RemoteProcess& process, bool alone) {
  if (alone && ++process.refused_alone >= kMostRefusalsAlone) {
    owner_.start_failed(process, "the server refused a session channel: " + last_error(connection.session.get()));
    return;
  }
  // This connection is full for now; another one takes the process.
  connection.full = true;
  detach(process);
  process.phase = RemoteProcess::Phase::waiting;
  assign(process);
}

void Pool::connection_failed(Connection& connection, const std::string& reason) {
  if (connection.closed) return;
  connection.closed = true;
  spdlog::warn("ssh: connection to {} failed: {}", connection.endpoint.text(), reason);
  const auto processes = connection.processes;
  for (auto* process : processes) {
    if (process->pid > 0) {
      pb::Exited exited;
      exited.set_return_code(-1);
      exited.set_lost(true);
      exited.set_reason("lost: the connection to " + connection.endpoint.host + " failed: " + reason);
      owner_.exited(*process, exited);
    } else {
      owner_.start_failed(*process, reason);
    }
  }
  connection.processes.clear();
}

// ---- Connections -------------------------------------------------------------------

int Pool::handshakes_in_progress(const Endpoint& endpoint) const {
  int count = 0;
  for (const auto& connection : connections_)
    if (!connection->closed && connection->phase != Connection::Phase::ready &&
        connection->endpoint.host == endpoint.host && connection->endpoint.port == endpoint.port)
      ++count;
  return count;
}

Connection* Pool::open_connection(const Endpoint& endpoint, std::string& error) {
  std::unique_ptr<Connection> connection;
  try {
    connection = new_connection(endpoint, settings_);
  } catch (const SshError& failure) {
    error = failure.what();
    return nullptr;
  }
  Connection& added = *connection;
  connections_.push_back(std::move(connection));
  // An address needs no lookup; a name is looked up off this thread.
  Addresses numeric;
  if (numeric_lookup(endpoint.host, endpoint.port, numeric) != 0) {
    added.phase = Connection::Phase::resolving;
    added.resolve_id = resolver_.resolve(endpoint.host, endpoint.port);
    resolving_[added.resolve_id] = &added;
    return &added;
  }
  added.addresses.assign(numeric.begin(), numeric.end());
  if (!ssh::connect_next_address(added, settings_)) {
    error = added.connect_failures;
    connections_.pop_back();  // nothing refers to it yet
    return nullptr;
  }
  connection_of_fd_[added.fd] = &added;
  watch(added);
  return &added;
}

void Pool::on_names_resolved() {
  for (auto& result : resolver_.take_results()) {
    const auto found = resolving_.find(result.id);
    if (found == resolving_.end()) continue;  // its connection is gone (timed out)
    Connection& connection = *found->second;
    resolving_.erase(found);
    if (connection.closed) continue;
    if (result.error != 0) {
      connection_failed(connection, "cannot resolve " + connection.endpoint.host + ": " + ::gai_strerror(result.error));
      continue;
    }
    connection.addresses.assign(result.addresses.begin(), result.addresses.end());
    connection.phase = Connection::Phase::connecting;
    connect_next_address(connection);
  }
}

void Pool::connect_next_address(Connection& connection) {
  if (connection.fd >= 0) {  // the previous address failed
    if (connection.registered) owner_.unwatch(connection.fd);
    connection_of_fd_.erase(connection.fd);
  }
  if (!ssh::connect_next_address(connection, settings_)) {
    connection_failed(connection, connection.connect_failures);
    return;
  }
  connection_of_fd_[connection.fd] = &connection;
  watch(connection);
}

void Pool::watch(Connection& connection) {
  if (connection.fd < 0) return;  // still resolving its name
  const std::uint32_t wanted = wanted_events(connection);
  if (connection.registered && wanted == connection.watched) return;
  if (connection.registered)
    owner_.change_watch(connection.fd, wanted);
  else
    owner_.watch(connection.fd, wanted);
  connection.registered = true;
  connection.watched = wanted;
}

void Pool::remove_closed_connections() {
  bool removed = false;
  for (auto it = connections_.begin(); it != connections_.end();) {
    Connection& connection = **it;
    if (!connection.closed) {
      ++it;
      continue;
    }
    for (auto* process : connection.processes) process->connection = nullptr;
    resolving_.erase(connection.resolve_id);
    if (connection.fd >= 0) {
      if (connection.registered) owner_.unwatch(connection.fd);
      connection_of_fd_.erase(connection.fd);
    }
    close_connection(connection);
    it = connections_.erase(it);
    removed = true;
  }
  if (removed) retry_waiting_ = true;
  if (!retry_waiting_) return;
  // Room for handshakes, or a ready connection with room, may be there now.
  retry_waiting_ = false;
  std::deque<RemoteProcess*> waiting;
  waiting.swap(waiting_);
  for (auto* process : waiting) assign(*process);
}

// ---- The loop's parts --------------------------------------------------------------

bool Pool::on_ready(int fd, std::uint32_t events) {
  if (fd == resolver_.fd()) {
    on_names_resolved();
    return true;
  }
  auto found = connection_of_fd_.find(fd);
  if (found == connection_of_fd_.end()) return false;
  Connection& connection = *found->second;
  if (connection.closed) return true;
  if ((events & (EPOLLERR | EPOLLHUP)) && connection.processes.empty()) {
    connection_failed(connection, "the connection was closed");  // idle: nothing else would notice
    return true;
  }
  if (events & EPOLLIN) connection.last_inbound = Clock::now();
  pump(connection);
  return true;
}

bool Pool::pending() const {
  return std::any_of(connections_.begin(), connections_.end(),
                     [](const auto& connection) { return connection->pump_again; });
}

void Pool::pump_pending() {
  for (auto& connection : connections_)
    if (connection->pump_again) pump(*connection);
}

std::optional<Clock::time_point> Pool::next_timer() const {
  std::optional<Clock::time_point> next;
  auto consider = [&](Clock::time_point when) {
    if (!next || when < *next) next = when;
  };
  for (const auto& connection : connections_) {
    if (connection->closed) continue;
    if (connection->phase != Connection::Phase::ready) {
      consider(connection->deadline);
      if (connection->phase == Connection::Phase::connecting && !connection->addresses.empty())
        consider(connection->address_deadline);
    } else if (connection->processes.empty()) {
      consider(connection->idle_since + settings_.idle_close);
    } else {
      consider(connection->next_keepalive);
    }
  }
  return next;
}

void Pool::fire_timers(Clock::time_point now) {
  std::vector<Connection*> to_pump;
  for (auto& connection : connections_) {
    if (connection->closed) continue;
    if (connection->phase != Connection::Phase::ready) {
      if (connection->phase == Connection::Phase::connecting && !connection->addresses.empty() &&
          connection->address_deadline <= now) {
        connection->connect_failures += std::string(connection->connect_failures.empty() ? "" : "; ") +
                                        "no answer from " + connection->endpoint.host + " (" + connection->address +
                                        "), next address tried";
        connect_next_address(*connection);
        continue;
      }
      if (connection->deadline <= now && connection->phase == Connection::Phase::resolving)
        connection_failed(*connection, "looking up the name " + connection->endpoint.host + " took more than " +
                                           std::to_string(settings_.connect_timeout.count()) + " ms");
      else if (connection->deadline <= now)
        connection_failed(*connection, "no answer from " + connection->endpoint.host + ":" +
                                           std::to_string(connection->endpoint.port) + " within " +
                                           std::to_string(settings_.connect_timeout.count()) + " ms");
      continue;
    }
    if (connection->processes.empty() && connection->idle_since + settings_.idle_close <= now) {
      spdlog::debug("ssh: closing idle connection to {}", connection->endpoint.text());
      connection->closed = true;
      continue;
    }
    if (connection->processes.empty()) continue;  // idle: the idle timer above closes it
    bool sent = false;
    std::string reason;
    if (!keep_alive(*connection, settings_, now, sent, reason))
      connection_failed(*connection, reason);
    else if (sent)
      to_pump.push_back(connection.get());
  }
  for (auto* connection : to_pump)
    if (!connection->closed) pump(*connection);
}

}  // namespace drunc::workers::ssh

#include "ssh/ssh_worker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "drunc_zmq/internal.pb.h"
#include "launch_script.hpp"
#include "line_splitter.hpp"
#include "worker_link.hpp"
#include "ssh/host_keys.hpp"
#include "ssh/libssh2_handles.hpp"
#include "ssh/remote_command.hpp"
#include "ssh/resolver.hpp"
#include "ssh/ssh_backend.hpp"

namespace drunc::workers {
namespace {

namespace pb = drunc_zmq::internal;
using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string user;
  std::string host;
  int port = 22;
  std::string text() const { return user + "@" + host + ":" + std::to_string(port); }
  bool operator==(const Endpoint&) const = default;
};

struct Connection;

// One process in one channel.
struct RemoteProcess {
  enum class Phase { waiting, opening, executing, running, closing };

  std::string uuid;
  std::uint32_t generation = 0;
  Endpoint endpoint;
  std::string command;
  Connection* connection = nullptr;  // null while waiting for one with room
  ssh::Channel channel;
  Phase phase = Phase::waiting;
  LineSplitter output;
  LineSplitter errors;
  std::vector<std::string> early_output;  // lines read before the pid: sent after Started
  std::string error_text;                 // stderr before the pid, for a StartFailed reason
  std::int64_t pid = 0;                   // > 0 once Started was reported
  std::string to_write;                   // signal words for the remote watcher
  std::optional<Clock::time_point> sigkill_at;
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
  ssh::Session session;
  Phase phase = Phase::connecting;
  Clock::time_point deadline;  // of connecting, handshaking and authenticating
  std::size_t next_key = 0;    // index in key_files of the key to try next
  ssh::Agent agent;            // ssh-agent, tried after the key files
  libssh2_agent_publickey* agent_identity = nullptr;  // the agent identity being tried
  bool agent_done = false;
  std::string auth_failures;   // why each key was refused, for the error message
  bool full = false;           // the server refused a channel (MaxSessions)
  std::vector<RemoteProcess*> processes;
  Clock::time_point idle_since;
  Clock::time_point next_keepalive;
  Clock::time_point last_inbound;  // when the server last sent anything (keepalives ask it to)
  std::uint32_t watched = 0;   // epoll events registered
  bool registered = false;     // in the epoll set
  bool closed = false;         // failed or idle: to be removed
  bool pump_again = false;     // libssh2 may hold data read for its channels: pump on the next turn
};

std::string errno_text(int error) { return std::strerror(error); }

std::string address_text(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text, sizeof text);
  else if (address.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text, sizeof text);
  return text;
}

// Says goodbye if the socket takes it at once, then shuts the socket down so
// that freeing the session cannot wait on a silent peer, and frees it all.
void close_connection(Connection& connection) {
  connection.agent.reset();  // the agent belongs to the session
  if (connection.session) libssh2_session_disconnect(connection.session.get(), "drunc-zmq closing");
  if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_RDWR);
  connection.session.reset();
  if (connection.fd >= 0) ::close(connection.fd);
  connection.fd = -1;
}

int signal_number(const std::string& name) {
  for (int number = 1; number < 65; ++number) {
    const char* abbreviation = ::sigabbrev_np(number);
    if (abbreviation && name == abbreviation) return number;
  }
  return 0;
}

class Loop {
 public:
  Loop(zmq::socket_t& socket, int stop_fd, const SshSettings& settings);
  ~Loop();
  void run();

 private:
  // Commands from the broker
  void drain_commands();
  void launch(const pb::Launch& launch);
  void kill(const pb::Kill& kill);

  // Connections
  void assign(RemoteProcess& process);
  Connection* open_connection(const Endpoint& endpoint, std::string& error);
  void on_names_resolved();
  // Starts connecting to the next address of the host; false when none is left.
  bool connect_next_address(Connection& connection);
  void note_connect_failure(Connection& connection, const std::string& where, int error);
  void pump(Connection& connection);
  bool advance_setup(Connection& connection);
  bool try_agent(Connection& connection);
  void fail_connection(Connection& connection, const std::string& reason);
  void watch(Connection& connection);
  void remove_closed_connections();
  int handshakes_in_progress(const Endpoint& endpoint) const;

  // Processes; each returns whether anything moved (a phase, bytes read or written).
  bool advance(Connection& connection, RemoteProcess& process);
  bool read_channel(Connection& connection, RemoteProcess& process);
  void finish(RemoteProcess& process, const pb::Exited& exited);
  void start_failed(RemoteProcess& process, const std::string& reason);
  void detach(RemoteProcess& process);
  void forget(RemoteProcess& process);

  // Timers
  int milliseconds_to_next_timer() const;
  void fire_timers();

  void send(pb::WorkerReport& report, const RemoteProcess& process);

  zmq::socket_t& socket_;
  int stop_fd_;
  const SshSettings& settings_;
  int epoll_fd_;
  int socket_fd_;
  bool stopping_ = false;
  std::unordered_map<std::string, std::unique_ptr<RemoteProcess>> processes_;  // by uuid
  std::list<std::unique_ptr<Connection>> connections_;
  std::unordered_map<int, Connection*> connection_of_fd_;
  std::deque<RemoteProcess*> waiting_;  // for a connection with room (handshake limit reached)
  ssh::Resolver resolver_;
  std::unordered_map<std::uint64_t, Connection*> resolving_;  // by lookup id
  bool retry_waiting_ = false;          // a connection became ready or closed: waiting_ may move
};

Loop::Loop(zmq::socket_t& socket, int stop_fd, const SshSettings& settings)
    : socket_(socket), stop_fd_(stop_fd), settings_(settings), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  socket_fd_ = socket_.get(zmq::sockopt::fd);
  for (int fd : {socket_fd_, stop_fd_, resolver_.fd()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
}

Loop::~Loop() {
  processes_.clear();  // channels first: they belong to the sessions
  for (auto& connection : connections_) close_connection(*connection);
  ::close(epoll_fd_);
}

void Loop::run() {
  std::array<epoll_event, 64> events;
  while (!stopping_) {
    drain_commands();
    const bool pending = std::any_of(connections_.begin(), connections_.end(),
                                     [](const auto& connection) { return connection->pump_again; });
    const int n = ::epoll_wait(epoll_fd_, events.data(), events.size(), pending ? 0 : milliseconds_to_next_timer());
    if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd_) stopping_ = true;
      if (fd == resolver_.fd()) on_names_resolved();
      auto found = connection_of_fd_.find(fd);
      if (found == connection_of_fd_.end() || found->second->closed) continue;
      Connection& connection = *found->second;
      if ((events[i].events & (EPOLLERR | EPOLLHUP)) && connection.processes.empty()) {
        fail_connection(connection, "the connection was closed");  // idle: nothing else would notice
        continue;
      }
      if (events[i].events & EPOLLIN) connection.last_inbound = Clock::now();
      pump(connection);
    }
    for (auto& connection : connections_)
      if (connection->pump_again) pump(*connection);
    fire_timers();
    remove_closed_connections();
  }
}

// ---- Commands from the broker ------------------------------------------------

void Loop::drain_commands() {
  workers::drain_commands(socket_, "ssh worker", [this](const pb::WorkerCommand& command) {
    if (command.has_launch()) launch(command.launch());
    if (command.has_kill()) kill(command.kill());
  });
  remove_closed_connections();
}

void Loop::launch(const pb::Launch& launch) {
  if (processes_.contains(launch.uuid())) {
    pb::WorkerReport report;
    report.set_uuid(launch.uuid());
    report.set_generation(launch.generation());
    report.mutable_start_failed()->set_reason("a process with this uuid is still running");
    send_report(socket_, report);
    return;
  }
  auto process = std::make_unique<RemoteProcess>();
  process->uuid = launch.uuid();
  process->generation = launch.generation();
  process->endpoint = {launch.user(), launch.host(), static_cast<int>(launch.port())};
  try {
    process->command = remote_command(build_launch_script(launch.description(), incarnation_of(launch)));
  } catch (const InvalidDescription& error) {
    pb::WorkerReport report;
    report.set_uuid(launch.uuid());
    report.set_generation(launch.generation());
    report.mutable_start_failed()->set_reason(error.what());
    send_report(socket_, report);
    return;
  }
  RemoteProcess& added = *process;
  processes_.emplace(launch.uuid(), std::move(process));
  assign(added);
}

void Loop::kill(const pb::Kill& kill) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kill.timeout_ms());
  std::vector<Connection*> touched;
  for (const auto& target : kill.targets()) {
    auto found = processes_.find(target.uuid());
    if (found == processes_.end() || found->second->generation != target.generation()) continue;
    RemoteProcess& process = *found->second;
    if (process.phase != RemoteProcess::Phase::running) continue;
    process.to_write += "QUIT\n";
    process.sigkill_at = deadline;
    touched.push_back(process.connection);
  }
  for (auto* connection : touched)
    if (!connection->closed) pump(*connection);
}

// ---- Connections ---------------------------------------------------------------

// Puts a process on a connection to its endpoint with room for one more
// channel, opening one if needed (within the handshake limit), or queues it.
void Loop::assign(RemoteProcess& process) {
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
    start_failed(process, error);
    return;
  }
  process.connection = connection;
  connection->processes.push_back(&process);
  pump(*connection);
}

int Loop::handshakes_in_progress(const Endpoint& endpoint) const {
  int count = 0;
  for (const auto& connection : connections_)
    if (!connection->closed && connection->phase != Connection::Phase::ready &&
        connection->endpoint.host == endpoint.host && connection->endpoint.port == endpoint.port)
      ++count;
  return count;
}

Connection* Loop::open_connection(const Endpoint& endpoint, std::string& error) {
  auto connection = std::make_unique<Connection>();
  connection->endpoint = endpoint;
  connection->session.reset(libssh2_session_init());
  if (!connection->session) {
    error = "libssh2_session_init failed";
    return nullptr;
  }
  libssh2_session_set_blocking(connection->session.get(), 0);
  connection->deadline = Clock::now() + settings_.connect_timeout;
  Connection& added = *connection;
  connections_.push_back(std::move(connection));
  // An address needs no lookup; a name is looked up off this thread.
  ssh::Addresses numeric;
  if (ssh::numeric_lookup(endpoint.host, endpoint.port, numeric) != 0) {
    added.phase = Connection::Phase::resolving;
    added.resolve_id = resolver_.resolve(endpoint.host, endpoint.port);
    resolving_[added.resolve_id] = &added;
    return &added;
  }
  added.addresses.assign(numeric.begin(), numeric.end());
  if (!connect_next_address(added)) {
    error = added.connect_failures;
    connections_.pop_back();  // nothing refers to it yet
    return nullptr;
  }
  return &added;
}

void Loop::on_names_resolved() {
  for (auto& result : resolver_.take_results()) {
    const auto found = resolving_.find(result.id);
    if (found == resolving_.end()) continue;  // its connection is gone (timed out)
    Connection& connection = *found->second;
    resolving_.erase(found);
    if (connection.closed) continue;
    if (result.error != 0) {
      fail_connection(connection, "cannot resolve " + connection.endpoint.host + ": " + ::gai_strerror(result.error));
      continue;
    }
    connection.addresses.assign(result.addresses.begin(), result.addresses.end());
    connection.phase = Connection::Phase::connecting;
    if (!connect_next_address(connection)) fail_connection(connection, connection.connect_failures);
  }
}

bool Loop::connect_next_address(Connection& connection) {
  if (connection.fd >= 0) {  // the previous address failed
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);
    connection_of_fd_.erase(connection.fd);
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
    const int idle = std::max(1, static_cast<int>(settings_.keepalive_interval.count() / 1000));
    const int count = 3;
    const unsigned timeout_ms = static_cast<unsigned>(settings_.keepalive_interval.count()) * 3;
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
    connection_of_fd_[fd] = &connection;
    const auto now = Clock::now();
    connection.address_deadline = now + (connection.deadline - now) / static_cast<int>(connection.addresses.size() + 1);
    watch(connection);
    return true;
  }
  return false;
}

void Loop::note_connect_failure(Connection& connection, const std::string& where, int error) {
  connection.connect_failures += std::string(connection.connect_failures.empty() ? "" : "; ") + "cannot connect to " +
                                 connection.endpoint.host + " (" + where + "): " + errno_text(error);
}

void Loop::pump(Connection& connection) {
  connection.pump_again = false;
  if (connection.closed) return;
  if (connection.phase != Connection::Phase::ready && !advance_setup(connection)) {
    if (!connection.closed) watch(connection);
    return;
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
      moved |= advance(connection, *process);
    }
  }
  // Still moving: the rest on the next turn, after other connections and the broker's commands.
  connection.pump_again = moved;
  if (!connection.closed) watch(connection);
}

// Connecting, handshake, host key, authentication. True once ready.
bool Loop::advance_setup(Connection& connection) {
  if (connection.phase == Connection::Phase::resolving) return false;  // on_names_resolved moves it on
  LIBSSH2_SESSION* session = connection.session.get();
  const std::string where = connection.endpoint.host + ":" + std::to_string(connection.endpoint.port);
  if (connection.phase == Connection::Phase::connecting) {
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      note_connect_failure(connection, connection.address, error);
      if (!connect_next_address(connection)) fail_connection(connection, connection.connect_failures);
      return false;
    }
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    if (::getpeername(connection.fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) return false;
    connection.phase = Connection::Phase::handshaking;
  }
  if (connection.phase == Connection::Phase::handshaking) {
    const int rc = libssh2_session_handshake(session, connection.fd);
    if (rc == LIBSSH2_ERROR_EAGAIN) return false;
    if (rc != 0) {
      fail_connection(connection, "SSH handshake with " + where + " failed: " + ssh::last_error(session));
      return false;
    }
    const std::string refused = ssh::check_host_key(session, settings_, connection.endpoint.host, connection.endpoint.port);
    if (!refused.empty()) {
      fail_connection(connection, refused);
      return false;
    }
    connection.phase = Connection::Phase::authenticating;
  }
  if (connection.phase == Connection::Phase::authenticating) {
    const auto& user = connection.endpoint.user;
    while (!libssh2_userauth_authenticated(session) && connection.next_key < settings_.key_files.size()) {
      const auto& key = settings_.key_files[connection.next_key];
      if (!std::filesystem::exists(key)) {
        ++connection.next_key;
        continue;
      }
      const int rc = libssh2_userauth_publickey_fromfile_ex(session, user.c_str(), static_cast<unsigned>(user.size()),
                                                            nullptr, key.c_str(), nullptr);
      if (rc == LIBSSH2_ERROR_EAGAIN) return false;
      if (rc != 0) connection.auth_failures += "; key " + key + ": " + ssh::last_error(session);
      ++connection.next_key;
    }
    if (!libssh2_userauth_authenticated(session) && !try_agent(connection)) return false;
    if (!libssh2_userauth_authenticated(session)) {
      const std::string tried = connection.auth_failures.empty() ? "; no key file found and no agent identity"
                                                                 : connection.auth_failures;
      fail_connection(connection, "authentication as " + user + " on " + where + " failed" + tried);
      return false;
    }
    connection.phase = Connection::Phase::ready;
    retry_waiting_ = true;
    connection.agent.reset();
    libssh2_keepalive_config(session, 1, static_cast<unsigned>(std::max<long>(1, settings_.keepalive_interval.count() / 1000)));
    connection.next_keepalive = Clock::now() + settings_.keepalive_interval;
    connection.last_inbound = Clock::now();
    connection.idle_since = Clock::now();
    spdlog::debug("ssh: connected to {}", connection.endpoint.text());
  }
  return true;
}

// ssh-agent identities, one after another. False while waiting on the server.
bool Loop::try_agent(Connection& connection) {
  LIBSSH2_SESSION* session = connection.session.get();
  if (connection.agent_done || !settings_.use_agent || !std::getenv("SSH_AUTH_SOCK")) return true;
  if (!connection.agent) {
    connection.agent.reset(libssh2_agent_init(session));
    // The agent is a local socket: these calls block briefly.
    if (!connection.agent || libssh2_agent_connect(connection.agent.get()) != 0 ||
        libssh2_agent_list_identities(connection.agent.get()) != 0) {
      connection.auth_failures += "; ssh-agent: " + ssh::last_error(session);
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
    connection.auth_failures += "; ssh-agent identity " + std::string(connection.agent_identity->comment ? connection.agent_identity->comment : "?") +
                                ": " + ssh::last_error(session);
    libssh2_agent_publickey* next = nullptr;
    if (libssh2_agent_get_identity(connection.agent.get(), &next, connection.agent_identity) != 0) next = nullptr;
    connection.agent_identity = next;
  }
  connection.agent_done = true;
  return true;
}

void Loop::fail_connection(Connection& connection, const std::string& reason) {
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
      finish(*process, exited);
    } else {
      start_failed(*process, reason);
    }
  }
  connection.processes.clear();
}

void Loop::watch(Connection& connection) {
  if (connection.fd < 0) return;  // still resolving its name
  // An idle ready connection has nothing to read its input for: watching it
  // would wake the loop forever (level-triggered). Errors are still reported.
  const bool idle = connection.phase == Connection::Phase::ready && connection.processes.empty();
  std::uint32_t wanted = idle ? 0u : static_cast<std::uint32_t>(EPOLLIN);
  if (connection.phase == Connection::Phase::connecting ||
      (libssh2_session_block_directions(connection.session.get()) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
    wanted |= EPOLLOUT;
  if (connection.registered && wanted == connection.watched) return;
  epoll_event event{};
  event.events = wanted;
  event.data.fd = connection.fd;
  ::epoll_ctl(epoll_fd_, connection.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, connection.fd, &event);
  connection.registered = true;
  connection.watched = wanted;
}

void Loop::remove_closed_connections() {
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
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);
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

// ---- Processes ------------------------------------------------------------------

bool Loop::advance(Connection& connection, RemoteProcess& process) {
  LIBSSH2_SESSION* session = connection.session.get();
  const auto phase_before = process.phase;
  bool moved = false;
  if (process.phase == RemoteProcess::Phase::waiting) process.phase = RemoteProcess::Phase::opening;
  if (process.phase == RemoteProcess::Phase::opening) {
    LIBSSH2_CHANNEL* channel = libssh2_channel_open_session(session);
    if (!channel) {
      const int error = libssh2_session_last_errno(session);
      if (error == LIBSSH2_ERROR_EAGAIN) return false;
      const bool other_channels = std::any_of(connection.processes.begin(), connection.processes.end(),
                                              [&](const RemoteProcess* other) { return other != &process && other->channel; });
      if (error == LIBSSH2_ERROR_CHANNEL_FAILURE && !other_channels) {
        // Refused with no channel open: the server takes none at all here.
        start_failed(process, "the server refused a session channel: " + ssh::last_error(session));
        return false;
      }
      if (error == LIBSSH2_ERROR_CHANNEL_FAILURE) {
        // MaxSessions reached: this connection is full; another one takes the process.
        connection.full = true;
        detach(process);
        process.phase = RemoteProcess::Phase::waiting;
        assign(process);
        return false;
      }
      const std::string reason = "cannot open a channel to " + connection.endpoint.host + ": " + ssh::last_error(session);
      if (error == LIBSSH2_ERROR_SOCKET_SEND || error == LIBSSH2_ERROR_SOCKET_RECV ||
          error == LIBSSH2_ERROR_SOCKET_DISCONNECT || error == LIBSSH2_ERROR_SOCKET_TIMEOUT)
        fail_connection(connection, reason);
      else
        start_failed(process, reason);
      return false;
    }
    process.channel.reset(channel);
    process.phase = RemoteProcess::Phase::executing;
  }
  if (process.phase == RemoteProcess::Phase::executing) {
    const int rc = libssh2_channel_exec(process.channel.get(), process.command.c_str());
    if (rc == LIBSSH2_ERROR_EAGAIN) return process.phase != phase_before;  // moved only if the channel just opened
    if (rc != 0) {
      start_failed(process, "cannot start the command on " + connection.endpoint.host + ": " + ssh::last_error(session));
      return false;
    }
    process.phase = RemoteProcess::Phase::running;
  }
  if (process.phase == RemoteProcess::Phase::running) {
    while (!process.to_write.empty()) {
      const ssize_t written = libssh2_channel_write(process.channel.get(), process.to_write.data(), process.to_write.size());
      if (written == LIBSSH2_ERROR_EAGAIN) break;
      if (written < 0) {
        fail_connection(connection, "cannot write to the channel: " + ssh::last_error(session));
        return false;
      }
      process.to_write.erase(0, static_cast<std::size_t>(written));
      moved = true;
    }
    moved |= read_channel(connection, process);
    if (connection.closed || process.phase != RemoteProcess::Phase::running) return false;
    if (libssh2_channel_eof(process.channel.get())) process.phase = RemoteProcess::Phase::closing;
  }
  if (process.phase == RemoteProcess::Phase::closing) {
    int rc = libssh2_channel_close(process.channel.get());
    if (rc == 0) rc = libssh2_channel_wait_closed(process.channel.get());
    if (rc == LIBSSH2_ERROR_EAGAIN) return moved || process.phase != phase_before;
    if (rc != 0) {
      fail_connection(connection, "cannot close the channel: " + ssh::last_error(session));
      return false;
    }
    pb::Exited exited;
    char* signal_name = nullptr;
    std::size_t signal_length = 0;
    libssh2_channel_get_exit_signal(process.channel.get(), &signal_name, &signal_length, nullptr, nullptr, nullptr,
                                    nullptr);
    if (signal_name) {
      const std::string name(signal_name, signal_length);
      libssh2_free(session, signal_name);
      exited.set_return_code(128 + signal_number(name));
      exited.set_reason("ended by signal " + name);
    } else {
      const int status = libssh2_channel_get_exit_status(process.channel.get());
      exited.set_return_code(status);
      exited.set_reason("exited with status " + std::to_string(status));
    }
    std::vector<std::string> last;
    process.output.finish(last);
    if (process.pid > 0 && !last.empty()) {
      pb::WorkerReport report;
      for (auto& line : last) report.mutable_output()->add_lines(std::move(line));
      send(report, process);
    }
    if (process.pid > 0) {
      finish(process, exited);
    } else {
      std::vector<std::string> errors;
      process.errors.finish(errors);
      for (const auto& line : errors) process.error_text += (process.error_text.empty() ? "" : " ") + line;
      start_failed(process, "the command ended before starting (" + exited.reason() + ")" +
                                (process.error_text.empty() ? "" : ": " + process.error_text));
    }
    return true;  // `process` is gone
  }
  return moved || process.phase != phase_before;
}

bool Loop::read_channel(Connection& connection, RemoteProcess& process) {
  static thread_local std::array<char, 32 * 1024> buffer;
  LIBSSH2_CHANNEL* channel = process.channel.get();
  bool read = false;
  // stderr first: it carries the pid line, which must precede any output.
  while (true) {
    const ssize_t n = libssh2_channel_read_stderr(channel, buffer.data(), buffer.size());
    if (n == LIBSSH2_ERROR_EAGAIN || n == 0) break;
    if (n < 0) {
      fail_connection(connection, "cannot read from the channel: " + ssh::last_error(connection.session.get()));
      return false;
    }
    read = true;
    std::vector<std::string> lines;
    process.errors.feed({buffer.data(), static_cast<std::size_t>(n)}, lines);
    pb::WorkerReport report;
    for (auto& line : lines) {
      if (process.pid == 0 && line.rfind(kRemotePidPrefix, 0) == 0) {
        process.pid = std::strtoll(line.c_str() + kRemotePidPrefix.size(), nullptr, 10);
        pb::WorkerReport started;
        started.mutable_started()->set_pid(process.pid);
        send(started, process);
        if (!process.early_output.empty()) {
          pb::WorkerReport early;
          for (auto& text : process.early_output) early.mutable_output()->add_lines(std::move(text));
          process.early_output.clear();
          send(early, process);
        }
      } else if (process.pid == 0) {
        process.error_text += (process.error_text.empty() ? "" : " ") + line;
      } else {
        report.mutable_output()->add_lines(std::move(line));
      }
    }
    if (report.has_output()) send(report, process);
  }
  // stdout, a bounded amount per turn so that one busy process cannot starve the others.
  for (int reads = 0; reads < 8; ++reads) {
    const ssize_t n = libssh2_channel_read(channel, buffer.data(), buffer.size());
    if (n == LIBSSH2_ERROR_EAGAIN || n == 0) break;
    if (n < 0) {
      fail_connection(connection, "cannot read from the channel: " + ssh::last_error(connection.session.get()));
      return false;
    }
    read = true;
    std::vector<std::string> lines;
    process.output.feed({buffer.data(), static_cast<std::size_t>(n)}, lines);
    if (lines.empty()) continue;
    if (process.pid == 0) {
      for (auto& line : lines) process.early_output.push_back(std::move(line));
      continue;
    }
    pb::WorkerReport report;
    for (auto& line : lines) report.mutable_output()->add_lines(std::move(line));
    send(report, process);
  }
  return read;
}

void Loop::finish(RemoteProcess& process, const pb::Exited& exited) {
  pb::WorkerReport report;
  *report.mutable_exited() = exited;
  send(report, process);
  forget(process);
}

void Loop::start_failed(RemoteProcess& process, const std::string& reason) {
  pb::WorkerReport report;
  report.mutable_start_failed()->set_reason(reason);
  send(report, process);
  forget(process);
}

void Loop::detach(RemoteProcess& process) {
  if (!process.connection) return;
  auto& list = process.connection->processes;
  list.erase(std::remove(list.begin(), list.end(), &process), list.end());
  if (list.empty()) process.connection->idle_since = Clock::now();
  // A channel has closed: the server may take another one.
  if (process.channel) process.connection->full = false;
  process.connection = nullptr;
}

void Loop::forget(RemoteProcess& process) {
  detach(process);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &process), waiting_.end());
  processes_.erase(process.uuid);  // destroys the channel
}

// ---- Timers ------------------------------------------------------------------------

int Loop::milliseconds_to_next_timer() const {
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
  for (const auto& [uuid, process] : processes_)
    if (process->sigkill_at) consider(*process->sigkill_at);
  if (!next) return -1;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  return wait < 0 ? 0 : static_cast<int>(wait);
}

void Loop::fire_timers() {
  const auto now = Clock::now();
  std::vector<Connection*> to_pump;
  for (auto& [uuid, process] : processes_) {
    if (!process->sigkill_at || *process->sigkill_at > now) continue;
    process->sigkill_at.reset();
    process->to_write += "KILL\n";
    if (process->connection) to_pump.push_back(process->connection);
  }
  for (auto& connection : connections_) {
    if (connection->closed) continue;
    if (connection->phase != Connection::Phase::ready) {
      if (connection->phase == Connection::Phase::connecting && !connection->addresses.empty() &&
          connection->address_deadline <= now) {
        connection->connect_failures += std::string(connection->connect_failures.empty() ? "" : "; ") +
                                        "no answer from " + connection->endpoint.host + " (" +
                                        connection->address + "), next address tried";
        if (!connect_next_address(*connection)) fail_connection(*connection, connection->connect_failures);
        continue;
      }
      if (connection->deadline <= now && connection->phase == Connection::Phase::resolving)
        fail_connection(*connection, "looking up the name " + connection->endpoint.host + " took more than " +
                                         std::to_string(settings_.connect_timeout.count()) + " ms");
      else if (connection->deadline <= now)
        fail_connection(*connection, "no answer from " + connection->endpoint.host + ":" +
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
    // Keepalives want a reply: a server silent for three intervals is gone,
    // even when its kernel still acknowledges (a hung host, a stopped sshd).
    if (now - connection->last_inbound > 3 * settings_.keepalive_interval + std::chrono::milliseconds(500)) {
      fail_connection(*connection, "no answer from " + connection->endpoint.host + " for " +
                                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                          now - connection->last_inbound).count()) +
                                       " s (keepalives unanswered)");
      continue;
    }
    if (connection->next_keepalive <= now) {
      int seconds_to_next = 0;
      const int rc = libssh2_keepalive_send(connection->session.get(), &seconds_to_next);
      if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN) {
        fail_connection(*connection, "keepalive failed: " + ssh::last_error(connection->session.get()));
        continue;
      }
      connection->next_keepalive = now + settings_.keepalive_interval;
      to_pump.push_back(connection.get());
    }
  }
  for (auto* connection : to_pump)
    if (!connection->closed) pump(*connection);
}

void Loop::send(pb::WorkerReport& report, const RemoteProcess& process) {
  report.set_uuid(process.uuid);
  report.set_generation(process.generation);
  send_report(socket_, report);
}

}  // namespace

SshWorker::SshWorker(zmq::context_t& context, std::string worker_endpoint, std::string routing_id,
                     SshSettings settings)
    : settings_(std::move(settings)), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  ssh::initialise_library();
  thread_ = std::thread([this, &context, worker_endpoint = std::move(worker_endpoint),
                         routing_id = std::move(routing_id)] { run(context, worker_endpoint, routing_id); });
}

SshWorker::~SshWorker() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(stop_fd_);
}

void SshWorker::run(zmq::context_t& context, const std::string& worker_endpoint, const std::string& routing_id) {
  name_this_thread("drunc-" + routing_id);
  try {
    zmq::socket_t socket = connect_to_broker(context, worker_endpoint, routing_id);
    Loop loop(socket, stop_fd_, settings_);
    send_ready(socket, kSshBackend);
    loop.run();
  } catch (const std::exception& error) {
    // The loop is gone, and with it every session: the remote wrappers end their groups.
    spdlog::critical("ssh worker {} stopped: {}", routing_id, error.what());
    report_worker_failure(context, worker_endpoint, routing_id, error.what());
  }
}

}  // namespace drunc::workers

#include "broker_loop.hpp"

#include <malloc.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>

#include <system_error>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "drunc_zmq/events.pb.h"
#include "druncschema/generic.pb.h"
#include "errors.hpp"
#include "host_router.hpp"
#include "launch_script.hpp"
#include "wire/certificate.hpp"
#include "wire/topic.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;
namespace internal = drunc_zmq::internal;
using wire::Command;

namespace {

// Messages taken from one socket before looking at the others again.
constexpr int kBatch = 256;
// Replies held back to be sent together (see BrokerLoop::outbox_).
constexpr std::size_t kOutboxLimit = 64;
// Replies ZeroMQ queues to one client; the rest wait in its backlog, counted in bytes.
constexpr int kClientQueueMessages = 64;
constexpr auto kLongestBacklogRetry = std::chrono::milliseconds(64);
// Refusals one client may leave unread (a few MB) before its backlog is discarded.
constexpr std::size_t kMostRefusalsUnread = 10000;
// How far past max_message_bytes a request is still read, to be answered with
// an error and logged; ZeroMQ closes the connection of a larger one unseen.
constexpr std::int64_t kOversizeReadAnyway = std::int64_t{16} << 20;
// Requests ZeroMQ queues from one client: it then stops reading that
// connection (nothing is lost), which bounds what a fast sender of large
// requests holds in memory to this many times the limit above.
constexpr int kClientIncomingMessages = 64;

// Where a request came from, for the log: the client's IP address over TCP.
std::string peer_address(zmq::message_t& frame) {
  try {
    return frame.gets("Peer-Address");
  } catch (const zmq::error_t&) {
    return "an unknown address";
  }
}

std::size_t size_of(const std::vector<zmq::message_t>& frames) {
  std::size_t bytes = 0;
  for (const auto& frame : frames) bytes += frame.size();
  return bytes;
}

// Gives freed heap back to the system after a large backlog is gone.
void return_memory(std::size_t freed) {
  if (freed >= (std::size_t{1} << 20)) ::malloc_trim(0);
}

// A version-4 UUID from the kernel's random source.
std::string new_uuid() {
  std::uint64_t words[2];
  if (::getrandom(words, sizeof words, 0) != static_cast<ssize_t>(sizeof words))
    throw std::system_error(errno, std::generic_category(), "getrandom");
  const std::uint64_t high = words[0], low = words[1];
  char text[37];
  std::snprintf(text, sizeof text, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(high >> 32),
                static_cast<unsigned>((high >> 16) & 0xffff), static_cast<unsigned>(high & 0x0fff),
                static_cast<unsigned>(0x8000 | ((low >> 48) & 0x3fff)),
                static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return text;
}

std::string bind_or_explain(zmq::socket_t& socket, const std::string& endpoint, const std::string& setting) {
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& error) {
    throw ConfigError("setting \"" + setting + "\": cannot bind " + endpoint + ": " + error.what());
  }
  std::string bound = socket.get(zmq::sockopt::last_endpoint);
  // Only the broker's own user may connect to a socket file ("@name" is abstract: no file).
  if (bound.rfind("ipc://", 0) == 0 && bound.size() > 6 && bound[6] != '@' && ::chmod(bound.c_str() + 6, 0600) != 0)
    throw ConfigError("setting \"" + setting + "\": cannot make " + bound.substr(6) +
                      " private: " + std::strerror(errno));
  return bound;
}

// With security.mode "none", an endpoint other machines can reach lets them
// run any command: refused unless explicitly allowed.
void check_exposure(const Config& config) {
  if (config.security.mode != SecuritySettings::Mode::none) return;
  for (const auto& [setting, endpoint] :
       {std::pair<const char*, const std::string&>{"control_endpoint", config.control_endpoint},
        std::pair<const char*, const std::string&>{"events_endpoint", config.events_endpoint}}) {
    if (is_local_endpoint(endpoint)) continue;
    if (!config.security.allow_insecure_network)
      throw ConfigError(std::string("setting \"") + setting + "\": " + endpoint +
                        " can be reached from other machines, but security.mode is \"none\": anyone who reaches "
                        "it could run any command as this user. Set security.mode to \"curve\" with "
                        "security.server_certificate and security.client_certificates (docs/CONFIG.md, "
                        "\"Security\"), or bind a loopback address (tcp://127.0.0.1:PORT) or an ipc:// path; "
                        "security.allow_insecure_network: true overrides this check");
    spdlog::warn(
        "INSECURE: {} {} is reachable from the network with no authentication (security.mode \"none\", "
        "security.allow_insecure_network true): anyone who reaches it can run any command as this user",
        setting, endpoint);
  }
}

// The Request.data of a command, unpacked, or BadRequestFormat naming the type expected.
template <typename Message>
Message unpack(const pm::Request& request, bool optional = false) {
  Message message;
  auto expected = [] { return Message::descriptor()->full_name(); };
  if (!request.has_data()) {
    if (optional) return message;
    throw BadRequestFormat("Request.data is missing: expected " + expected());
  }
  // PROTOCOL.md fixes the prefix; protobuf's Is<> alone would take any "x/" before the name.
  if (!request.data().Is<Message>() || request.data().type_url().rfind("type.googleapis.com/", 0) != 0)
    throw BadRequestFormat("Request.data holds " + request.data().type_url() + ": expected type.googleapis.com/" +
                           expected());
  if (!request.data().UnpackTo(&message)) throw BadRequestFormat("Request.data could not be parsed as " + expected());
  return message;
}

// The query a request names, in a few words, for the audit line.
std::string describe_query(const pm::ProcessQuery& query) {
  std::string text;
  auto add = [&](const std::string& part) { text += (text.empty() ? "" : " ") + part; };
  for (const auto& uuid : query.uuids()) add("uuid=" + uuid.uuid());
  for (const auto& name : query.names()) add("name=" + name);
  if (!query.session().empty()) add("session=" + query.session());
  if (!query.user().empty()) add("user=" + query.user());
  if (text.empty()) return "(empty query)";
  // A name may hold anything: keep the audit line one line.
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

std::string describe_target(Command command, const pm::Request& request) {
  try {
    switch (command) {
      case Command::boot: {
        const auto boot = unpack<pm::BootRequest>(request);
        const auto& metadata = boot.process_description().metadata();
        pm::ProcessQuery query;
        query.add_names(metadata.name());
        query.set_session(metadata.session());
        return describe_query(query);
      }
      case Command::kill:
      case Command::restart:
      case Command::flush: return describe_query(unpack<pm::ProcessQuery>(request));
      case Command::terminate: return "(every process)";
      default: return {};
    }
  } catch (const BadRequestFormat&) {
    return "(unreadable)";
  }
}

struct CommandInfo {
  Command command;
  const char* data_type;
  const char* return_type;
  const char* help;
};

constexpr CommandInfo kCommandInfo[] = {
    {Command::describe, "", "dunedaq.druncschema.Description", "Describe this process manager and its commands"},
    {Command::boot, "dunedaq.druncschema.BootRequest", "dunedaq.druncschema.ProcessInstanceList",
     "Start a process on the first allowed host that accepts it"},
    {Command::terminate, "dunedaq.druncschema.ProcessQuery", "dunedaq.druncschema.ProcessInstanceList",
     "Kill every process (the query is ignored)"},
    {Command::restart, "dunedaq.druncschema.ProcessQuery", "dunedaq.druncschema.ProcessInstanceList",
     "Kill one process if alive and start it again, same uuid"},
    {Command::kill, "dunedaq.druncschema.ProcessQuery", "dunedaq.druncschema.ProcessInstanceList",
     "Kill the matching processes: SIGQUIT, then SIGKILL after the kill timeout"},
    {Command::flush, "dunedaq.druncschema.ProcessQuery", "dunedaq.druncschema.ProcessInstanceList",
     "Forget the matching dead processes"},
    {Command::ps, "dunedaq.druncschema.ProcessQuery", "dunedaq.druncschema.ProcessInstanceList",
     "List the matching processes"},
    {Command::logs, "dunedaq.druncschema.LogRequest", "dunedaq.druncschema.LogLine",
     "Stream the last lines of one process's output"},
};

}  // namespace

BrokerLoop::BrokerLoop(zmq::context_t& context, Config config, std::vector<workers::ConfiguredBackend> backends)
    : config_(std::move(config)),
      backends_(std::move(backends)),
      clients_(context, zmq::socket_type::router),
      events_(context, zmq::socket_type::xpub),
      workers_(context, zmq::socket_type::router),
      stop_(context, zmq::socket_type::pair),
      publisher_(events_, config_.name, config_.session),
      feed_position_(config_.name),
      registry_(config_.log_ring_lines) {
  check_exposure(config_);
  if (config_.security.mode == SecuritySettings::Mode::curve) {
    wire::Certificate server;
    try {
      server = wire::read_certificate(config_.security.server_certificate);
    } catch (const wire::CertificateError& error) {
      throw ConfigError(std::string("setting \"security.server_certificate\": ") + error.what());
    }
    if (server.secret_key.empty())
      throw ConfigError("setting \"security.server_certificate\": " + config_.security.server_certificate +
                        " holds no secret-key: name the secret certificate (zmq.auth writes it as NAME.key_secret, "
                        "drunc-pm keygen and zcert as NAME_secret)");
    admitted_ = load_access_list(config_.security.client_certificates);
    spdlog::info("security: CURVE, {} client keys admitted from {}", admitted_.size(),
                 config_.security.client_certificates);
    zap_ = std::make_unique<ZapHandler>(context);  // before the CURVE sockets bind
    for (auto* socket : {&clients_, &events_}) {
      socket->set(zmq::sockopt::curve_server, 1);
      socket->set(zmq::sockopt::curve_secretkey, server.secret_key);
      socket->set(zmq::sockopt::zap_domain, "drunc-zmq");
    }
    // Subscribers read only their sessions' log and state events (security.hpp, granted_prefixes).
    events_.set(zmq::sockopt::xpub_manual, 1);
    publisher_.grant_subscriptions([this](zmq::message_t& change, const std::string& prefix) {
      const char* key = nullptr;
      try {
        key = change.gets(kKeyProperty);
      } catch (const zmq::error_t&) {
      }
      const auto found = key ? admitted_.find(key) : admitted_.end();
      return found == admitted_.end() ? std::vector<std::string>{} : granted_prefixes(found->second, prefix);
    });
  }
  // A reply that cannot be delivered is reported by send() instead of vanishing.
  clients_.set(zmq::sockopt::router_mandatory, 1);
  // A client that reconnects with the same routing id gets the replies still
  // owed to it. Not with CURVE: a routing id is chosen by the client, so
  // another admitted key could take over someone's connection and replies.
  clients_.set(zmq::sockopt::router_handover, config_.security.mode == SecuritySettings::Mode::none ? 1 : 0);
  clients_.set(zmq::sockopt::maxmsgsize, config_.max_message_bytes + kOversizeReadAnyway);
  clients_.set(zmq::sockopt::sndhwm, kClientQueueMessages);
  clients_.set(zmq::sockopt::rcvhwm, kClientIncomingMessages);
  clients_.set(zmq::sockopt::linger, 0);
  control_endpoint_ = bind_or_explain(clients_, config_.control_endpoint, "control_endpoint");

  events_.set(zmq::sockopt::sndhwm, config_.events_high_water_mark);
  events_.set(zmq::sockopt::xpub_nodrop, 1);  // see EventPublisher::send
  events_.set(zmq::sockopt::linger, 1000);    // let SERVER_SHUTDOWN reach subscribers
  events_endpoint_ = bind_or_explain(events_, config_.events_endpoint, "events_endpoint");

  workers_.set(zmq::sockopt::router_mandatory, 1);
  workers_.set(zmq::sockopt::sndhwm, 0);  // commands to workers are never dropped
  workers_.set(zmq::sockopt::linger, 0);
  workers_.bind(kWorkerEndpoint);
  stop_.bind(kStopEndpoint);
  if (config_.on_broker_exit == OnBrokerExit::keep) {
    try {
      journal_ = std::make_unique<Journal>(config_.journal_directory);
    } catch (const JournalError& error) {
      throw ConfigError(error.what());
    }
    spdlog::info("on_broker_exit keep: journal in {}, {} processes in it", config_.journal_directory,
                 journal_->state().size());
  }
}

void BrokerLoop::set_worker_starter(WorkerStarter start) { start_worker_ = std::move(start); }

void BrokerLoop::wait_for_workers(const std::map<std::string, std::string>& backend_of) {
  std::unordered_set<std::string> missing;
  for (const auto& [id, backend] : backend_of) {
    const std::string worker = id.substr(0, id.find('#'));
    routing_ids_.try_emplace(worker, id);
    backend_of_worker_[worker] = backend;
    missing.insert(id);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!missing.empty()) {
    zmq::pollitem_t item{workers_.handle(), 0, ZMQ_POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || zmq::poll(&item, 1, left) == 0)
      throw std::runtime_error("a launcher worker did not start: " + *missing.begin() + " never said it was ready");
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(workers_, std::back_inserter(frames), zmq::recv_flags::dontwait) || frames.size() != 2)
      continue;
    const std::string id = frames[0].to_string();
    internal::WorkerReport report;
    if (!missing.count(id) || !report.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size())) ||
        !report.has_ready())
      continue;
    if (report.ready().backend() != backend_of.at(id))
      throw std::runtime_error("launcher worker " + id + " says it serves backend \"" + report.ready().backend() +
                               "\", not \"" + backend_of.at(id) + "\"");
    missing.erase(id);
  }
}

void BrokerLoop::run() {
  publisher_.read_subscriptions();
  publisher_.broadcast(pm::SERVER_READY,
                       [&] { return "process manager " + config_.name + " ready on " + control_endpoint_; });
  spdlog::info("{} serving on {}, events on {}", config_.name, control_endpoint_, events_endpoint_);
  readopt();
  zmq::pollitem_t items[] = {{stop_.handle(), 0, ZMQ_POLLIN, 0},
                             {workers_.handle(), 0, ZMQ_POLLIN, 0},
                             {clients_.handle(), 0, ZMQ_POLLIN, 0},
                             {events_.handle(), 0, ZMQ_POLLIN, 0},
                             {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  while (true) {
    zmq::poll(items, zap_ ? 5 : 4, poll_timeout());
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t signal;
      (void)stop_.recv(signal, zmq::recv_flags::dontwait);
      const auto text = signal.to_string_view();
      if (text == "reload") {
        reload_access_list();
      } else if (text == "fault") {
        throw std::runtime_error("failure injected by a test");
      } else if (text.rfind("fault-worker ", 0) == 0) {
        internal::WorkerCommand fail;
        fail.mutable_fail_for_test();
        send_to_worker(std::string(text.substr(13)), fail);
      } else {
        break;
      }
    }
    if (zap_ && (items[4].revents & ZMQ_POLLIN)) zap_->answer_requests(admitted_);
    if (items[3].revents & ZMQ_POLLIN) publisher_.read_subscriptions();
    // Reports first: they finish requests already in flight.
    if (items[1].revents & ZMQ_POLLIN) receive_worker_reports();
    if (items[2].revents & ZMQ_POLLIN) receive_client_messages();
    // The turn's transitions are on disk before any answer that reports them.
    if (journal_) journal_->sync();
    send_replies();
    if (!fatal_.empty()) break;
  }
  shut_down();
  if (!fatal_.empty()) throw std::runtime_error(fatal_);
}

// ---- Client requests --------------------------------------------------------

void BrokerLoop::receive_client_messages() {
  std::vector<zmq::message_t> frames;
  frames.reserve(8);
  for (int i = 0; i < kBatch; ++i) {
    frames.clear();
    if (!zmq::recv_multipart(clients_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    handle_request(frames);
  }
}

void BrokerLoop::handle_request(std::vector<zmq::message_t>& frames) {
  auto decoded = wire::decode_request(frames);
  if (auto* malformed = std::get_if<wire::MalformedRequest>(&decoded)) {
    if (!malformed->reply_to) {
      spdlog::warn("dropped a malformed message with no readable request id: {}", malformed->reason);
      return;
    }
    spdlog::warn("malformed request: {}", malformed->reason);
    Reply reply = operations_.receive(Caller{*malformed->reply_to, {}, "", {}, {}});
    answer_error(reply, pm::NOT_EXECUTED_BAD_REQUEST_FORMAT, malformed->reason);
    return;
  }
  auto& envelope = std::get<wire::RequestEnvelope>(decoded);
  if (const auto bytes = size_of(frames); bytes > static_cast<std::size_t>(config_.max_message_bytes)) {
    const auto reason = envelope.command + " refused: the request is " + std::to_string(bytes) +
                        " bytes, over max_message_bytes (" + std::to_string(config_.max_message_bytes) + ")";
    spdlog::warn("{} (client at {})", reason, peer_address(frames.back()));
    Reply reply = operations_.receive(Caller{std::move(envelope.from), {}, envelope.command, {}, {}});
    answer_error(reply, pm::NOT_EXECUTED_BAD_REQUEST_FORMAT, reason);
    return;
  }
  Reply reply = operations_.receive(Caller{std::move(envelope.from), {}, envelope.command, {}, {}});
  Caller& caller = reply.caller();
  pm::Request& request = request_;
  const bool parsed = request.ParseFromArray(envelope.body.data(), static_cast<int>(envelope.body.size()));
  if (parsed) caller.token = request.token();
  caller.user = caller.token.user_name();
  try {
    // Nothing about the request is believed before its key is.
    const ClientIdentity* identity = zap_ ? &authenticate(frames, caller) : nullptr;
    const auto command = wire::parse_command(envelope.command);
    if (!command)
      throw NotImplemented("unknown command \"" + envelope.command +
                           "\": expected describe, boot, terminate, restart, kill, flush, ps or logs");
    if (!parsed) throw BadRequestFormat("the last frame is not a serialized dunedaq.druncschema.Request");
    if (stopping())
      throw DruncError("the process manager is shutting down" + (fatal_.empty() ? "" : " (" + fatal_ + ")") + ": " +
                       caller.command + " was not carried out");
    if (auto backlog = backlogs_.find(caller.address.routing_id);
        backlog != backlogs_.end() &&
        backlog->second.bytes + backlog->second.in_outbox > static_cast<std::size_t>(config_.max_unread_reply_bytes)) {
      ++backlog->second.refused;
      throw DruncError(caller.command + " was not carried out: this client has left " +
                       std::to_string(backlog->second.bytes + backlog->second.in_outbox) +
                       " bytes of replies unread (max_unread_reply_bytes " +
                       std::to_string(config_.max_unread_reply_bytes) + "); read them first");
    }
    if (changes_state(*command)) caller.target = describe_target(*command, request);
    publisher_.broadcast(pm::COMMAND_RECEIVED, [&] { return who(caller) + " sent " + caller.command; });
    if (identity) authorise(*identity, *command, request);
    if (changes_state(*command)) {
      pm::CommandNotificationMessage notification;
      notification.set_user(caller.user);
      notification.set_command(caller.command);
      publisher_.broadcast_message(pm::COMMAND_EXECUTION_START, notification);
    }
    dispatch(reply, *command, request, identity);
  } catch (const std::exception& error) {
    const auto flag = flag_for(error);
    if (flag == pm::UNHANDLED_EXCEPTION_THROWN)
      spdlog::error("{} failed unexpectedly: {}", envelope.command, error.what());
    // Not if the request already went to the operations table, which answers it.
    if (reply.valid()) answer_error(reply, flag, error.what());
  }
}

const ClientIdentity& BrokerLoop::authenticate(std::vector<zmq::message_t>& frames, Caller& caller) {
  const char* key = nullptr;
  const char* user = nullptr;
  try {
    key = frames.back().gets(kKeyProperty);
    user = frames.back().gets("User-Id");
  } catch (const zmq::error_t&) {
  }
  auto found = key ? admitted_.find(key) : admitted_.end();
  if (found == admitted_.end())
    throw NotAuthorised(std::string("the key ") + (key ? key : "of this connection") +
                        " is no longer admitted by this process manager (removed from security.client_certificates)");
  caller.user = user ? user : found->second.user;
  const std::string& claimed = caller.token.user_name();
  if (!claimed.empty() && claimed != caller.user)
    throw NotAuthorised("the request's token names the user \"" + claimed + "\", but its key is " + caller.user +
                        "'s: nothing was done");
  return found->second;
}

void BrokerLoop::authorise(const ClientIdentity& identity, Command command, const pm::Request& request) {
  const std::string name(wire::command_name(command));
  const std::string who = identity.user + " (" + role_name(identity.role) + ")";
  if (!role_allows(identity.role, command))
    throw NotAuthorised(who + " may not " + name +
                        (command == Command::terminate ? ": terminate, which kills every session, needs the admin role"
                                                       : ": " + name + " needs the operator or admin role"));
  auto refuse = [&](const std::vector<std::string>& sessions) {
    std::string list;
    for (const auto& session : sessions) list += (list.empty() ? "\"" : ", \"") + session + "\"";
    throw NotAuthorised(who + " may not " + (command == Command::logs ? "read the logs of" : name) +
                        " processes of session " + list +
                        ": its certificate allows only its own sessions; nothing was done");
  };
  switch (command) {
    case Command::boot: {
      const std::string session = unpack<pm::BootRequest>(request).process_description().metadata().session();
      if (!identity.may_touch(session)) refuse({session});
      return;
    }
    case Command::kill:
    case Command::restart:
    case Command::flush: {
      const CompiledQuery query(unpack<pm::ProcessQuery>(request));
      // flush with an empty query means every process; kill and restart match nothing then.
      if (query.empty() && command != Command::flush) return;
      if (auto forbidden = forbidden_sessions(identity, query.empty() ? nullptr : &query); !forbidden.empty())
        refuse(forbidden);
      return;
    }
    case Command::logs: {
      const CompiledQuery query(unpack<pm::LogRequest>(request).query());
      if (auto forbidden = forbidden_sessions(identity, query.empty() ? nullptr : &query); !forbidden.empty())
        refuse(forbidden);
      return;
    }
    case Command::describe:
    case Command::ps:         // lists only what the caller may see
    case Command::terminate:  // admin: every session
      return;
  }
}

std::vector<std::string> BrokerLoop::forbidden_sessions(const ClientIdentity& identity, const CompiledQuery* query) {
  std::set<std::string> forbidden;
  if (identity.all_sessions) return {};
  for (auto* record : registry_.all())
    if ((!query || query->matches(record->uuid, record->metadata())) && !identity.may_touch(record->session()))
      forbidden.insert(record->session());
  for (const Operation* op : operations_.starting()) {
    const auto& metadata = op->boot.process_description().metadata();
    if ((!query || query->matches(op->uuid, metadata)) && !identity.may_touch(metadata.session()))
      forbidden.insert(metadata.session());
  }
  return {forbidden.begin(), forbidden.end()};
}

void BrokerLoop::reload_access_list() {
  if (!zap_) {
    spdlog::info("SIGHUP: nothing to reload (security.mode is \"none\")");
    return;
  }
  try {
    AccessList fresh = load_access_list(config_.security.client_certificates);
    std::size_t removed = 0, added = 0;
    for (const auto& [key, identity] : admitted_)
      if (!fresh.count(key)) {
        ++removed;
        spdlog::info("SIGHUP: key {} of {} removed: its connections are refused from their next request", key,
                     identity.user);
      }
    for (const auto& [key, identity] : fresh)
      if (!admitted_.count(key)) {
        ++added;
        spdlog::info("SIGHUP: key {} of {} ({}) admitted", key, identity.user, role_name(identity.role));
      }
    admitted_ = std::move(fresh);
    spdlog::info("SIGHUP: {} client keys admitted ({} added, {} removed)", admitted_.size(), added, removed);
  } catch (const std::exception& error) {
    spdlog::error("SIGHUP: the client certificates were not reloaded, the {} keys admitted before still are: {}",
                  admitted_.size(), error.what());
  }
}

void BrokerLoop::dispatch(Reply& reply, Command command, const pm::Request& request, const ClientIdentity* identity) {
  switch (command) {
    case Command::describe: return describe(reply);
    case Command::boot: return boot(reply, request);
    case Command::terminate:
      unpack<pm::ProcessQuery>(request, /*optional=*/true);  // ignored, but must be well-formed
      return kill(reply, nullptr);
    case Command::kill: {
      const CompiledQuery query(unpack<pm::ProcessQuery>(request));
      return kill(reply, &query);
    }
    case Command::restart: return restart(reply, request);
    case Command::flush: return flush(reply, request);
    case Command::ps: return ps(reply, request, identity);
    case Command::logs: return logs(reply, request);
  }
}

void BrokerLoop::describe(Reply& reply) {
  pm::Description description;
  description.set_type("process_manager");
  description.set_name(config_.name);
  description.set_session(config_.session.empty() ? "no_session" : config_.session);
  for (const auto& info : kCommandInfo) {
    auto* command = description.add_commands();
    command->set_name(std::string(wire::command_name(info.command)));
    if (info.data_type[0] != '\0') command->add_data_type(info.data_type);
    command->set_help(info.help);
    command->set_return_type(info.return_type);
  }
  drunc_zmq::EventFeed feed;
  feed.set_address(config_.events_advertised_endpoint.empty() ? events_endpoint_ : config_.events_advertised_endpoint);
  feed.set_protocol(std::string(wire::kEventProtocol));
  feed.set_publisher_id(publisher_.publisher_id());
  feed.set_events_dropped(publisher_.dropped());
  feed.set_security_mode(zap_ ? "curve" : "none");
  feed.set_insecure_network_allowed(
      !zap_ && config_.security.allow_insecure_network &&
      !(is_local_endpoint(config_.control_endpoint) && is_local_endpoint(config_.events_endpoint)));
  description.mutable_broadcast()->PackFrom(feed);
  answer(reply, pm::EXECUTED_SUCCESSFULLY, &description);
}

void BrokerLoop::boot(Reply& reply, const pm::Request& request) {
  auto boot = unpack<pm::BootRequest>(request);
  const auto& restriction = boot.process_restriction();
  if (restriction.allowed_host_types_size() > 0)
    throw DruncError("allowed_host_types is not supported: list the hosts in allowed_hosts");
  if (restriction.allowed_hosts_size() == 0)
    throw DruncError("process_restriction.allowed_hosts is empty: no host to boot " +
                     boot.process_description().metadata().name() + " on");
  // Refuse what no host could run before trying any.
  try {
    workers::check_description(boot.process_description());
  } catch (const workers::InvalidDescription& error) {
    throw DruncError(error.what());
  }

  const std::string uuid = new_uuid();
  carry_out(operations_.begin_boot(std::move(reply), uuid, std::move(boot)));
}

void BrokerLoop::kill(Reply& reply, const CompiledQuery* query) {
  if (query && query->empty()) return answer_instances(reply, {});  // kill with an empty query matches nothing
  auto selected = [&](const std::string& uuid, const pm::ProcessMetadata& metadata) {
    return !query || query->matches(uuid, metadata);
  };
  std::vector<std::string> uuids;  // answer order
  std::unordered_set<std::string> waiting;
  std::unordered_map<std::string, pm::ProcessInstance> results;
  std::vector<std::string> starting;  // killed as soon as they start
  std::vector<ProcessRecord*> to_signal;
  for (auto* record : registry_.all()) {
    if (!selected(record->uuid, record->metadata())) continue;
    uuids.push_back(record->uuid);
    if (const Operation* launch = operations_.launch_of(record->uuid)) {
      starting.push_back(record->uuid);
      // Between two incarnations of a restart: the next one is killed as soon as it starts.
      if (launch->phase == Operation::Phase::starting) {
        results.emplace(record->uuid, record->instance());
        waiting.insert(record->uuid);
        continue;
      }
    }
    if (!is_alive(record->state)) {
      results.emplace(record->uuid, record->instance());
      continue;
    }
    waiting.insert(record->uuid);
    if (record->state == ProcessState::running) to_signal.push_back(record);
  }
  for (const Operation* op : operations_.starting()) {
    if (op->kind != Operation::Kind::boot || !selected(op->uuid, op->boot.process_description().metadata())) continue;
    uuids.push_back(op->uuid);
    waiting.insert(op->uuid);
    starting.push_back(op->uuid);
  }
  for (const auto& uuid : starting) carry_out(operations_.apply(Event::kill_requested(uuid)));
  // The kill is in the table before any signal: a process lost on the way settles it.
  carry_out(operations_.begin_kill(std::move(reply), std::move(uuids), std::move(waiting), std::move(results)));
  send_kills(to_signal);
}

void BrokerLoop::restart(Reply& reply, const pm::Request& request) {
  const auto matches = registry_.match(CompiledQuery(unpack<pm::ProcessQuery>(request)), true);
  if (matches.size() != 1)
    throw DruncError("restart needs a query matching exactly one process; it matches " +
                     std::to_string(matches.size()));
  ProcessRecord& record = *matches.front();
  if (operations_.launch_of(record.uuid)) throw DruncError("a restart of " + record.name() + " is already in progress");
  if (!is_alive(record.state))
    return carry_out(operations_.begin_boot(std::move(reply), record.uuid, record.boot, record.generation + 1));
  operations_.begin_restart_after_exit(std::move(reply), record.uuid, record.boot, record.generation + 1);
  if (record.state == ProcessState::running) send_kills({&record});
}

void BrokerLoop::flush(Reply& reply, const pm::Request& request) {
  const auto matches = registry_.match(CompiledQuery(unpack<pm::ProcessQuery>(request)), true);
  pm::ProcessInstanceList flushed;
  for (auto* record : matches) {
    if (is_alive(record->state) || operations_.launch_of(record->uuid)) continue;
    *flushed.add_values() = record->instance();
    publisher_.state(*record, "flushed");
    if (journal_) journal_->forget(record->uuid);
    registry_.remove(record->uuid);
  }
  answer(reply, pm::EXECUTED_SUCCESSFULLY, &flushed);
}

void BrokerLoop::ps(Reply& reply, const pm::Request& request, const ClientIdentity* identity) {
  auto records = registry_.match(CompiledQuery(unpack<pm::ProcessQuery>(request)), true);
  if (identity && !identity->all_sessions)
    std::erase_if(records, [&](const ProcessRecord* record) { return !identity->may_touch(record->session()); });
  answer_instances(
      reply, records,
      feed_position_.bytes(publisher_.publisher_id(), publisher_.sequence(), records, publisher_.session_sequences()));
}

void BrokerLoop::logs(Reply& reply, const pm::Request& request) {
  const auto log_request = unpack<pm::LogRequest>(request);
  const auto matches = registry_.match(CompiledQuery(log_request.query()), true);
  if (matches.size() != 1)
    throw DruncError("logs needs a query matching exactly one process; it matches " + std::to_string(matches.size()));
  const ProcessRecord& record = *matches.front();
  const std::size_t how_far = log_request.how_far() > 0 ? static_cast<std::size_t>(log_request.how_far()) : 100;
  pm::LogLine line;
  line.mutable_uuid()->set_uuid(record.uuid);
  for (const std::string* text : record.logs.last(how_far)) {
    line.set_line(*text);
    answer_part(reply, line);
  }
  drunc_zmq::LogCursor cursor;
  cursor.set_next_topic_sequence(publisher_.next_log_sequence(record));
  answer(reply, pm::EXECUTED_SUCCESSFULLY, &cursor);
}

// ---- Operations in flight ------------------------------------------------------

void BrokerLoop::carry_out(Outcome outcome) {
  if (outcome.reply) {
    auto& [flag, data] = *outcome.answer;
    std::visit([&](const auto& message) { answer(*outcome.reply, flag, &message); }, data);
  }
  switch (outcome.action) {
    case Step::Action::launch: return launch(*outcome.operation);
    case Step::Action::kill_started:
      if (auto* record = registry_.find(outcome.uuid); record && record->state == ProcessState::running)
        send_kills({record});
      return;
    case Step::Action::none: return;
  }
}

void BrokerLoop::carry_out(std::vector<Outcome> outcomes) {
  for (auto& outcome : outcomes) carry_out(std::move(outcome));
}

void BrokerLoop::launch(Operation& op) {
  const std::string uuid = op.uuid;  // op is gone once its last host fails
  if (stopping()) return carry_out(operations_.apply(Event::abandoned("the process manager is shutting down", uuid)));
  const auto& description = op.boot.process_description();
  const auto where = route_host(backends_, op.host, description.metadata());
  if (!where) return carry_out(operations_.apply(Event::start_failed(uuid, "not a valid host name")));
  op.worker = where->worker;
  internal::WorkerCommand command;
  auto* start = command.mutable_launch();
  start->set_uuid(uuid);
  start->set_generation(op.generation);
  start->set_host(where->host);
  start->set_user(where->user);
  start->set_port(static_cast<std::uint32_t>(where->port));
  start->set_allowed_host(op.host);
  *start->mutable_description() = description;
  if (journal_) {
    start->set_keep(true);
    start->set_journal_directory(config_.journal_directory);
  }
  if (!send_to_worker(where->worker, command))
    carry_out(operations_.apply(Event::start_failed(uuid, "its launcher worker is not running")));
}

void BrokerLoop::send_kills(const std::vector<ProcessRecord*>& records) {
  // One Kill command per worker, so that its processes are signalled together.
  std::unordered_map<std::string, internal::WorkerCommand> commands;
  for (auto* record : records) {
    auto& command = commands[record->worker];
    auto* target = command.mutable_kill()->add_targets();
    target->set_uuid(record->uuid);
    target->set_generation(record->generation);
    command.mutable_kill()->set_timeout_ms(static_cast<std::uint32_t>(config_.kill_timeout.count()));
    record->on_kill_sent();
    journal(*record);
  }
  for (const auto& [worker, command] : commands) {
    if (send_to_worker(worker, command)) continue;
    for (const auto& target : command.kill().targets())
      if (auto* record = registry_.find(target.uuid()); record && is_alive(record->state))
        report_lost(*record, "its launcher worker " + worker + " is not running");
  }
}

bool BrokerLoop::send_to_worker(const std::string& worker, const internal::WorkerCommand& command) {
  const auto routing_id = routing_ids_.find(worker);
  if (routing_id == routing_ids_.end() || routing_id->second.empty()) return false;  // failed, not restarted
  std::string bytes = command.SerializeAsString();
  if (auto waiting = unready_.find(routing_id->second); waiting != unready_.end()) {
    waiting->second.push_back(std::move(bytes));
    return true;
  }
  try {
    // A worker that is gone is unreachable (router_mandatory): nothing is queued.
    if (!workers_.send(zmq::buffer(routing_id->second), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return false;
    workers_.send(zmq::buffer(bytes), zmq::send_flags::none);
  } catch (const zmq::error_t& error) {
    spdlog::error("cannot reach launcher worker {}: {}", worker, error.what());
    return false;
  }
  return true;
}

// ---- Worker reports ----------------------------------------------------------

void BrokerLoop::receive_worker_reports() {
  // A process flooding output must not starve the clients: after this many
  // lines, the loop serves requests before it reads more reports.
  constexpr int kLinesPerTurn = 4096;
  int lines = 0;
  for (int i = 0; i < kBatch && lines < kLinesPerTurn; ++i) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(workers_, std::back_inserter(frames), zmq::recv_flags::dontwait)) return;
    internal::WorkerReport report;
    if (frames.size() != 2 || !report.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
      spdlog::error("unreadable report from worker {}", frames.empty() ? "?" : frames[0].to_string());
      continue;
    }
    if (report.has_output()) lines += report.output().lines_size();
    if (report.has_ready()) {
      on_worker_ready(frames[0].to_string(), report.ready().backend());
      continue;
    }
    try {
      if (report.has_worker_failed()) {
        on_worker_failed(report.worker_failed().worker(), report.worker_failed().reason());
        continue;
      }
      handle_report(report);
    } catch (const std::exception& error) {
      spdlog::error("report for {} could not be handled: {}", report.uuid(), error.what());
    }
  }
}

void BrokerLoop::handle_report(const internal::WorkerReport& report) {
  const std::string& uuid = report.uuid();
  switch (report.kind_case()) {
    case internal::WorkerReport::kStarted: return on_started(uuid, report.started());
    case internal::WorkerReport::kStartFailed:
      return carry_out(operations_.apply(Event::start_failed(uuid, report.start_failed().reason())));
    case internal::WorkerReport::kOutput: {
      auto* record = registry_.find(uuid);
      if (!record || record->generation != report.generation()) return;
      // The offset is written with the turn's other records (Journal::sync),
      // after these lines are published: a broker killed within the turn
      // leaves them to the next one to publish again (docs/JOURNAL.md).
      if (journal_ && report.output().offset() > record->output_offset) {
        record->output_offset = report.output().offset();
        journal_->offset(uuid, record->generation, record->output_offset);
      }
      publisher_.log_lines(*record, report.output().lines());
      for (const auto& line : report.output().lines()) record->logs.add(line);
      return;
    }
    case internal::WorkerReport::kExited: {
      auto* record = registry_.find(uuid);
      if (!record || record->generation != report.generation() || !is_alive(record->state)) return;
      if (readoption_.waiting.erase(uuid)) {
        ++(report.exited().lost() ? readoption_.lost : readoption_.ended);
        readoption_.stopping.erase(uuid);
      }
      on_exited(*record, report.exited());
      announce_readoption_when_done();
      return;
    }
    case internal::WorkerReport::kAdopted: {
      auto* record = registry_.find(uuid);
      if (record && record->generation == report.generation() && readoption_.waiting.erase(uuid)) on_adopted(*record);
      announce_readoption_when_done();
      return;
    }
    case internal::WorkerReport::kWorkerFailed:  // handled by receive_worker_reports
    case internal::WorkerReport::kReady:         // likewise
    case internal::WorkerReport::KIND_NOT_SET: return;
  }
}

void BrokerLoop::on_started(const std::string& uuid, const internal::Started& started) {
  const std::int64_t pid = started.pid();
  Operation* op = operations_.launch_of(uuid);
  if (!op || op->phase != Operation::Phase::starting) return;
  ProcessRecord* record = nullptr;
  if (op->kind == Operation::Kind::restart) {
    record = registry_.find(uuid);
    if (!record) return;  // cannot be: a record is not flushed while its restart is in the table
    record->worker = op->worker;
    publisher_.state(*record, record->on_restarted(op->generation, pid, op->host));
  } else {
    // The boot request moves to the record: the started event ends op.
    record = &registry_.add_booted(uuid, std::move(op->boot), op->host, op->worker, pid);
    publisher_.state(*record, "booted");
  }
  record->start_time = started.start_time();
  record->output_path = started.output_path();
  record->status_path = started.status_path();
  record->output_offset = 0;
  journal(*record);
  spdlog::info("{} {} (uuid {}, generation {}) on {}, pid {}",
               op->kind == Operation::Kind::restart ? "restarted" : "booted", record->name(), uuid, record->generation,
               op->host, pid);
  carry_out(operations_.apply(Event::started(uuid, record->instance())));
}

void BrokerLoop::on_exited(ProcessRecord& record, const internal::Exited& exited) {
  const auto transition = record.on_exited(exited.return_code(), exited.lost());
  journal(record);
  spdlog::info("{} (uuid {}) {}", record.name(), record.uuid, exited.reason());
  publisher_.state(record, transition);
  publisher_.broadcast(pm::SUBPROCESS_STATUS_UPDATE, [&] {
    return "process " + record.name() + " (uuid " + record.uuid + ", generation " + std::to_string(record.generation) +
           ") " + exited.reason();
  });
  carry_out(operations_.apply(Event::ended(record.uuid, record.instance())));
}

void BrokerLoop::report_lost(ProcessRecord& record, const std::string& why) {
  internal::Exited lost;
  lost.set_return_code(-1);
  lost.set_lost(true);
  lost.set_reason("lost: " + why);
  on_exited(record, lost);
}

void BrokerLoop::on_worker_failed(const std::string& routing_id, const std::string& reason) {
  const std::string worker = routing_id.substr(0, routing_id.find('#'));
  auto current = routing_ids_.find(worker);
  if (current == routing_ids_.end() || current->second != routing_id) return;  // an incarnation already replaced
  current->second.clear();                                                     // nothing more is sent to it
  spdlog::critical("launcher worker {} failed: {}; its processes were killed", routing_id, reason);
  restart_worker(worker);
  for (auto* record : registry_.all())
    if (record->worker == worker && is_alive(record->state))
      report_lost(*record, "its launcher worker " + worker + " failed (" + reason + ") and killed it");
  // Starts it had not answered go to the next host (the restarted worker's too).
  std::vector<std::string> starting;
  for (const Operation* op : operations_.starting())
    if (op->worker == worker) starting.push_back(op->uuid);
  for (const auto& uuid : starting)
    carry_out(operations_.apply(Event::start_failed(uuid, "its launcher worker failed: " + reason)));
}

void BrokerLoop::on_worker_ready(const std::string& routing_id, const std::string& backend) {
  auto waiting = unready_.find(routing_id);
  if (waiting == unready_.end()) return;
  const std::string worker = routing_id.substr(0, routing_id.find('#'));
  if (backend != backend_of_worker_[worker])
    spdlog::error("launcher worker {} says it serves backend \"{}\", not \"{}\"", routing_id, backend,
                  backend_of_worker_[worker]);
  std::vector<std::string> commands = std::move(waiting->second);
  unready_.erase(waiting);
  for (auto& bytes : commands) {
    internal::WorkerCommand command;
    command.ParseFromString(bytes);
    send_to_worker(routing_id.substr(0, routing_id.find('#')), command);
  }
}

void BrokerLoop::restart_worker(const std::string& worker) {
  // A worker that keeps failing is not restarted forever: the broker stops.
  constexpr std::size_t kMaxRestarts = 3;
  constexpr auto kRestartWindow = std::chrono::minutes(1);
  auto& restarts = worker_restarts_[worker];
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(restarts, [&](auto at) { return now - at > kRestartWindow; });
  std::string why;
  if (!start_worker_) {
    why = "no way to restart it";
  } else if (restarts.size() >= kMaxRestarts) {
    why = "it failed " + std::to_string(kMaxRestarts + 1) + " times within a minute";
  } else {
    restarts.push_back(now);
    const std::string routing_id = worker + "#" + std::to_string(++worker_incarnations_);
    try {
      start_worker_(worker, routing_id);
      // Commands wait in unready_ until it says it is ready.
      routing_ids_[worker] = routing_id;
      unready_[routing_id];
      spdlog::warn("launcher worker {} restarted as {}", worker, routing_id);
      return;
    } catch (const std::exception& error) {
      why = std::string("its restart failed: ") + error.what();
    }
  }
  spdlog::critical("launcher worker {} is not restarted ({}): the broker stops", worker, why);
  if (fatal_.empty()) fatal_ = "launcher worker " + worker + " failed and " + why;
}

// ---- on_broker_exit "keep": the journal and re-adoption -------------------------

void BrokerLoop::journal(const ProcessRecord& record) {
  if (!journal_) return;
  drunc_zmq::journal::Process process;
  process.set_uuid(record.uuid);
  *process.mutable_boot() = record.boot;
  process.set_host(record.metadata().hostname());
  process.set_worker(record.worker);
  if (auto backend = backend_of_worker_.find(record.worker); backend != backend_of_worker_.end())
    process.set_backend(backend->second);
  process.set_pid(record.pid);
  process.set_start_time(record.start_time);
  process.set_generation(record.generation);
  process.set_restarts(record.generation - 1);
  process.set_state(std::string(state_name(record.state)));
  process.set_return_code(record.return_code);
  process.set_output_path(record.output_path);
  process.set_output_offset(record.output_offset);
  process.set_status_path(record.status_path);
  journal_->put(process);
}

void BrokerLoop::readopt() {
  if (!journal_) return;
  std::vector<drunc_zmq::journal::Process> journalled;
  for (const auto* process : journal_->state().processes()) journalled.push_back(*process);
  if (journalled.empty()) return;
  readoption_.announced = false;
  for (auto& process : journalled) {
    ProcessRecord& record =
        registry_.add_booted(process.uuid(), process.boot(), process.host(), process.worker(), process.pid());
    const auto state = state_of_name(process.state());
    record.on_recovered(process.generation(), state, process.return_code());
    record.start_time = process.start_time();
    record.output_path = process.output_path();
    record.output_offset = process.output_offset();
    record.status_path = process.status_path();
    if (!is_alive(state)) continue;
    if (state == ProcessState::stopping) readoption_.stopping.insert(record.uuid);
    internal::WorkerCommand command;
    auto* adopt = command.mutable_adopt();
    adopt->set_uuid(record.uuid);
    adopt->set_generation(record.generation);
    adopt->set_pid(record.pid);
    adopt->set_start_time(record.start_time);
    adopt->set_output_path(record.output_path);
    adopt->set_output_offset(record.output_offset);
    adopt->set_status_path(record.status_path);
    if (record.output_path.empty()) {  // its backend did not keep it (ssh, so far): it ended with the last broker
      ++readoption_.lost;
      report_lost(record, "its backend (" + process.backend() +
                              ") does not keep processes across a restart of the process manager");
      continue;
    }
    readoption_.waiting.insert(record.uuid);
    if (!send_to_worker(record.worker, command)) {
      readoption_.waiting.erase(record.uuid);
      ++readoption_.lost;
      report_lost(record, "its worker " + record.worker + " is not running in this broker (" +
                              (process.backend().empty() ? "no backend" : "backend " + process.backend()) + ")");
    }
  }
  spdlog::info("journal: {} processes recovered, {} to re-adopt", journalled.size(), readoption_.waiting.size());
  announce_readoption_when_done();
}

void BrokerLoop::on_adopted(ProcessRecord& record) {
  ++readoption_.adopted;
  spdlog::info("re-adopted {} (uuid {}, generation {}), pid {}", record.name(), record.uuid, record.generation,
               record.pid);
  publisher_.state(record, "readopted");
  if (readoption_.stopping.erase(record.uuid)) {
    // Its kill was under way: sent again (send_kills takes a running record).
    record.on_recovered(record.generation, ProcessState::running, record.return_code);
    send_kills({&record});
  }
}

void BrokerLoop::announce_readoption_when_done() {
  if (readoption_.announced || !readoption_.waiting.empty()) return;
  readoption_.announced = true;
  const auto text = "process manager " + config_.name + " restarted: " + std::to_string(readoption_.adopted) +
                    " processes re-adopted, " + std::to_string(readoption_.ended) + " ended while it was down, " +
                    std::to_string(readoption_.lost) + " lost";
  spdlog::info("{}", text);
  publisher_.broadcast(pm::STATUS_UPDATE, [&] { return text; });
}

// ---- Replies -------------------------------------------------------------------

// As upstream drunc: the outcome of every command goes out as a broadcast too.
void BrokerLoop::broadcast_outcome(const Caller& caller, pm::ResponseFlag flag, const google::protobuf::Message* data) {
  if (caller.command.empty()) return;  // a malformed message, not a command
  if (!caller.target.empty() || flag == pm::NOT_EXECUTED_NOT_AUTHORISED) {
    pm::PlainText reason;
    if (flag != pm::EXECUTED_SUCCESSFULLY && data && data->GetDescriptor() == pm::PlainText::descriptor())
      reason.CopyFrom(*data);
    spdlog::info("audit: user={} command={} target={} outcome={}{}", who(caller), caller.command,
                 caller.target.empty() ? "-" : caller.target, pm::ResponseFlag_Name(flag),
                 reason.text().empty() ? "" : " reason=" + reason.text());
  }
  if (flag == pm::EXECUTED_SUCCESSFULLY) {
    publisher_.broadcast(pm::COMMAND_EXECUTION_SUCCESS, [&] { return who(caller) + " executed " + caller.command; });
    return;
  }
  publisher_.broadcast(
      flag == pm::UNHANDLED_EXCEPTION_THROWN ? pm::UNHANDLED_EXCEPTION_RAISED : pm::DRUNC_EXCEPTION_RAISED, [&] {
        pm::PlainText reason;
        if (data && data->GetDescriptor() == pm::PlainText::descriptor()) reason.CopyFrom(*data);
        return caller.command + " from " + who(caller) + " failed: " + pm::ResponseFlag_Name(flag) +
               (reason.text().empty() ? "" : ": " + reason.text());
      });
}

std::string BrokerLoop::who(const Caller& caller) { return caller.user.empty() ? "an anonymous client" : caller.user; }

bool BrokerLoop::spend(Reply& reply) {
  if (!reply.valid()) {
    spdlog::error("bug: a second answer to a {} request was not sent", reply.caller().command);
    return false;
  }
  reply.spend();
  return true;
}

void BrokerLoop::answer(Reply& reply, pm::ResponseFlag flag, const google::protobuf::Message* data) {
  if (!spend(reply)) return;
  broadcast_outcome(reply.caller(), flag, data);
  pm::Response& response = response_;
  response.Clear();
  if (data) response.mutable_data()->PackFrom(*data);
  queue_reply(reply.caller(), flag, response, false);
}

void BrokerLoop::answer_part(const Reply& reply, const google::protobuf::Message& data) {
  pm::Response& response = response_;
  response.Clear();
  response.mutable_data()->PackFrom(data);
  queue_reply(reply.caller(), pm::EXECUTED_SUCCESSFULLY, response, true);
}

void BrokerLoop::queue_reply(const Caller& caller, pm::ResponseFlag flag, pm::Response& response, bool more,
                             std::string_view suffix) {
  response.set_name(config_.name);
  *response.mutable_token() = caller.token;
  response.set_flag(flag);
  const std::size_t size = response.ByteSizeLong();
  zmq::message_t bytes(size + suffix.size());
  response.SerializeWithCachedSizesToArray(bytes.data<std::uint8_t>());
  if (!suffix.empty()) std::memcpy(bytes.data<char>() + size, suffix.data(), suffix.size());  // data() may be null
  if (auto backlog = backlogs_.find(caller.address.routing_id); backlog != backlogs_.end())
    backlog->second.in_outbox += bytes.size();
  outbox_.push_back({wire::encode_reply(caller.address, more, std::move(bytes)), caller.command});
  if (outbox_.size() >= kOutboxLimit) send_replies();
}

void BrokerLoop::send_replies() {
  flush_backlogs();
  for (auto& [frames, command] : outbox_) {
    const std::string routing_id = frames.front().to_string();
    auto backlog = backlogs_.find(routing_id);
    if (backlog == backlogs_.end()) {  // else it goes behind the replies already waiting
      const Delivery delivery = try_send(frames);
      if (delivery == Delivery::sent) continue;
      if (delivery == Delivery::gone) {
        spdlog::warn("reply to {} request dropped: the client is gone", command);
        continue;
      }
      backlog = backlogs_.try_emplace(routing_id).first;
    }
    const std::size_t bytes = size_of(frames);
    backlog->second.bytes += bytes;
    backlog->second.in_outbox -= std::min(backlog->second.in_outbox, bytes);
    backlog->second.replies.push_back(std::move(frames));
    // Refused requests still queue an answer each: a client that goes on
    // sending without reading has its unread replies discarded.
    if (backlog->second.refused > kMostRefusalsUnread)
      drop_backlog(routing_id, "it sent " + std::to_string(kMostRefusalsUnread) +
                                   " requests more after max_unread_reply_bytes without reading");
  }
  outbox_.clear();
}

BrokerLoop::Delivery BrokerLoop::try_send(std::vector<zmq::message_t>& frames) {
  try {
    // ZeroMQ's queue to this client full: nothing of the message was sent (router_mandatory).
    return zmq::send_multipart(clients_, frames, zmq::send_flags::dontwait) ? Delivery::sent : Delivery::full;
  } catch (const zmq::error_t&) {  // EHOSTUNREACH: no connection with this routing id
    return Delivery::gone;
  }
}

bool BrokerLoop::flush_backlogs() {
  bool progress = false;
  for (auto it = backlogs_.begin(); it != backlogs_.end();) {
    Backlog& backlog = it->second;
    const std::size_t before = backlog.bytes;
    Delivery delivery = Delivery::sent;
    while (!backlog.replies.empty() && (delivery = try_send(backlog.replies.front())) == Delivery::sent) {
      backlog.bytes -= size_of(backlog.replies.front());
      backlog.replies.pop_front();
      progress = true;
    }
    if (delivery == Delivery::gone) {
      spdlog::warn("{} unread replies ({} bytes) dropped: their client is gone", backlog.replies.size(), backlog.bytes);
    } else if (!backlog.replies.empty()) {
      ++it;
      continue;
    }
    it = backlogs_.erase(it);
    return_memory(before);
  }
  backlog_retry_ = progress ? std::chrono::milliseconds(1) : std::min(backlog_retry_ * 2, kLongestBacklogRetry);
  return progress;
}

std::chrono::milliseconds BrokerLoop::poll_timeout() const {
  return backlogs_.empty() ? std::chrono::milliseconds(-1) : backlog_retry_;
}

void BrokerLoop::drop_backlog(const std::string& routing_id, const std::string& why) {
  auto backlog = backlogs_.find(routing_id);
  if (backlog == backlogs_.end()) return;
  const std::size_t bytes = backlog->second.bytes;
  spdlog::warn("{} unread replies ({} bytes) to one client discarded: {}", backlog->second.replies.size(), bytes, why);
  backlogs_.erase(backlog);
  return_memory(bytes);
}

void BrokerLoop::answer_error(Reply& reply, pm::ResponseFlag flag, const std::string& text) {
  pm::PlainText plain;
  plain.set_text(text);
  answer(reply, flag, &plain);
}

void BrokerLoop::answer_instances(Reply& reply, const std::vector<ProcessRecord*>& records, std::string_view suffix) {
  if (!spend(reply)) return;
  broadcast_outcome(reply.caller(), pm::EXECUTED_SUCCESSFULLY, nullptr);
  pm::Response& response = response_;
  response.Clear();
  // What PackFrom would produce, from each record's cached serialization.
  static const std::string type_url = "type.googleapis.com/" + pm::ProcessInstanceList::descriptor()->full_name();
  response.mutable_data()->set_type_url(type_url);
  *response.mutable_data()->mutable_value() = serialized_instance_list(records);
  queue_reply(reply.caller(), pm::EXECUTED_SUCCESSFULLY, response, false, suffix);
}

// ---- Shutdown ------------------------------------------------------------------

void BrokerLoop::shut_down() {
  shutting_down_ = true;
  // keep: what runs goes on running, journalled, for the next broker; only
  // starts not answered yet are killed (they were never journalled).
  const bool keep = journal_ != nullptr;
  std::vector<ProcessRecord*> alive;
  std::size_t kept = 0;
  for (auto* record : registry_.all())
    if (record->state == ProcessState::running) (keep ? (void)++kept : alive.push_back(record));
  std::vector<std::string> starting;
  for (const Operation* op : operations_.starting()) starting.push_back(op->uuid);
  for (const auto& uuid : starting) carry_out(operations_.apply(Event::kill_requested(uuid)));
  spdlog::info("shutting down: killing {} processes", alive.size() + starting.size());
  send_kills(alive);
  const auto deadline = std::chrono::steady_clock::now() + config_.kill_timeout + std::chrono::seconds(5);
  auto busy = [&] {
    if (!operations_.empty()) return true;
    for (auto* record : registry_.all())
      if (is_alive(record->state) && (!keep || record->state == ProcessState::stopping)) return true;
    return false;
  };
  // Requests that arrive meanwhile are read and answered (handle_request refuses them).
  zmq::pollitem_t items[] = {{workers_.handle(), 0, ZMQ_POLLIN, 0},
                             {clients_.handle(), 0, ZMQ_POLLIN, 0},
                             {zap_ ? zap_->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  while (busy() && std::chrono::steady_clock::now() < deadline) {
    zmq::poll(items, zap_ ? 3 : 2, std::chrono::milliseconds(100));
    if (items[0].revents & ZMQ_POLLIN) receive_worker_reports();
    if (items[1].revents & ZMQ_POLLIN) receive_client_messages();
    if (zap_ && (items[2].revents & ZMQ_POLLIN)) zap_->answer_requests(admitted_);
    if (journal_) journal_->sync();
    send_replies();
  }
  carry_out(operations_.abandon_all("the process manager shut down before it ended"));
  if (journal_) journal_->sync();
  // The last requests, and the answers of this turn.
  receive_client_messages();
  send_replies();
  publisher_.read_subscriptions();
  publisher_.broadcast(pm::SERVER_SHUTDOWN, [&] {
    return "process manager " + config_.name + " shut down" +
           (keep ? ", leaving " + std::to_string(kept) + " processes running (on_broker_exit keep)" : std::string());
  });
}

}  // namespace drunc::broker

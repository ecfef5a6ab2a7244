// BrokerLoop: the broker thread's loop and everything it owns (see broker.hpp).
// Its source reads in sections: client requests, worker reports, replies.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "backend.hpp"
#include "config.hpp"
#include "drunc_zmq/events.pb.h"
#include "drunc_zmq/internal.pb.h"
#include "druncschema/process_manager.pb.h"
#include "druncschema/request_response.pb.h"
#include "feed_position.hpp"
#include "host_router.hpp"
#include "journal.hpp"
#include "operations.hpp"
#include "publisher.hpp"
#include "registry.hpp"
#include "security.hpp"
#include "wire/envelope.hpp"
#include "zap_handler.hpp"

namespace drunc::broker {

inline constexpr const char* kWorkerEndpoint = "inproc://drunc-workers";
inline constexpr const char* kStopEndpoint = "inproc://drunc-broker-stop";

class BrokerLoop {
 public:
  // Binds every socket; throws ConfigError naming the setting on failure.
  // backends: where processes start (host_router.hpp), in table order.
  BrokerLoop(zmq::context_t& context, Config config, std::vector<workers::ConfiguredBackend> backends);

  // Blocks until each worker (by routing id: its name, then "#N" from its
  // Nth restart) has said it is ready for its backend (by name), or throws.
  void wait_for_workers(const std::map<std::string, std::string>& backend_of);
  // How to start a worker again after it failed: (name, new routing id).
  // Called on the broker thread; throws if it cannot.
  using WorkerStarter = std::function<void(const std::string& worker, const std::string& routing_id)>;
  void set_worker_starter(WorkerStarter start);
  // Serves until "stop" arrives on the stop socket, then shuts down: kills
  // every managed process, answers every request still waiting (and those
  // that arrive meanwhile), publishes SERVER_SHUTDOWN, returns. "reload" on
  // the same socket re-reads security.client_certificates. A launcher worker
  // that fails is restarted (set_worker_starter); one that cannot be, or
  // fails again and again, makes it shut down the same way, then throw: a
  // broker that cannot start processes on some host must be restarted, not limp on.
  // Tests only: "fault" makes it throw at once, "fault-worker ID" makes
  // that worker fail.
  void run();

  const std::string& control_endpoint() const { return control_endpoint_; }
  const std::string& events_endpoint() const { return events_endpoint_; }

 private:
  // ---- Client requests
  // Each handler answers with reply, or hands it to operations_ to answer later.
  void receive_client_messages();
  void handle_request(std::vector<zmq::message_t>& frames);
  // identity: the caller's admitted key in curve mode, else null; valid during the call only.
  void dispatch(Reply& reply, wire::Command command, const dunedaq::druncschema::Request& request,
                const ClientIdentity* identity);
  // Curve mode: the identity of the key that sent frames, or NotAuthorised.
  const ClientIdentity& authenticate(std::vector<zmq::message_t>& frames, Caller& caller);
  // NotAuthorised unless identity's role and sessions allow the whole request.
  void authorise(const ClientIdentity& identity, wire::Command command, const dunedaq::druncschema::Request& request);
  // Sessions of the processes query matches (starting ones too) that identity may not touch.
  std::vector<std::string> forbidden_sessions(const ClientIdentity& identity, const CompiledQuery* query);
  void reload_access_list();
  void describe(Reply& reply);
  void boot(Reply& reply, const dunedaq::druncschema::Request& request);
  // query null: every process (terminate); an empty query: none (kill).
  void kill(Reply& reply, const CompiledQuery* query);
  void restart(Reply& reply, const dunedaq::druncschema::Request& request);
  void flush(Reply& reply, const dunedaq::druncschema::Request& request);
  void ps(Reply& reply, const dunedaq::druncschema::Request& request, const ClientIdentity* identity);
  void logs(Reply& reply, const dunedaq::druncschema::Request& request);

  // ---- Operations in flight
  // Sends what the operations table decided: answers, launches, kills.
  void carry_out(Outcome outcome);
  void carry_out(std::vector<Outcome> outcomes);
  // Sends op's launch to the host step chose; a host that cannot be tried fails at once.
  void launch(Operation& op);
  void send_kills(const std::vector<ProcessRecord*>& records);
  // False if the worker is not running (failed, or gone): nothing was sent.
  bool send_to_worker(const std::string& worker, const drunc_zmq::internal::WorkerCommand& command);

  // ---- Worker reports
  void receive_worker_reports();
  void handle_report(const drunc_zmq::internal::WorkerReport& report);
  void on_started(const std::string& uuid, const drunc_zmq::internal::Started& started);
  void on_exited(ProcessRecord& record, const drunc_zmq::internal::Exited& exited);
  // It is restarted; its processes are lost, its starts go to the next host.
  void on_worker_failed(const std::string& routing_id, const std::string& reason);
  // Starts worker again, or sets fatal_ (it keeps failing, or cannot start).
  void restart_worker(const std::string& worker);
  // A restarted worker's first message: sends what waited for it.
  void on_worker_ready(const std::string& routing_id, const std::string& backend);
  // Reported lost: the broker cannot know what became of it.
  void report_lost(ProcessRecord& record, const std::string& why);
  // ---- on_broker_exit "keep": the journal and re-adoption
  // The record's durable part, journalled (a transition): nothing without a journal.
  void journal(const ProcessRecord& record);
  // At start: every journalled process back in the registry; those that were
  // alive are handed to their workers (Adopt), answered by Adopted or Exited.
  void readopt();
  void on_adopted(ProcessRecord& record);
  // The broadcast that says how the re-adoption went, once every answer is in.
  void announce_readoption_when_done();
  // Starts or kills from now on are refused: shutting down, or a worker failed.
  bool stopping() const { return shutting_down_ || !fatal_.empty(); }

  // ---- Replies: each final answer spends its Reply (operations.hpp)
  // False, and logged, if reply was spent already: a second answer is not sent.
  bool spend(Reply& reply);
  void answer(Reply& reply, dunedaq::druncschema::ResponseFlag flag, const google::protobuf::Message* data);
  // A part of a streamed answer (logs): more follows.
  void answer_part(const Reply& reply, const google::protobuf::Message& data);
  void answer_error(Reply& reply, dunedaq::druncschema::ResponseFlag flag, const std::string& text);
  // suffix: serialized Response fields to add (ps: the feed's position).
  void answer_instances(Reply& reply, const std::vector<ProcessRecord*>& records, std::string_view suffix = {});
  // Completes the response (name, token, flag) and puts it in the outbox.
  // suffix: serialized Response fields appended to the response's bytes.
  void queue_reply(const Caller& caller, dunedaq::druncschema::ResponseFlag flag,
                   dunedaq::druncschema::Response& response, bool more, std::string_view suffix = {});
  // Sends the replies in the outbox, or adds them to their client's backlog.
  void send_replies();
  enum class Delivery { sent, full, gone };
  Delivery try_send(std::vector<zmq::message_t>& frames);
  // Sends what each backlog's client can take now; returns whether any went.
  bool flush_backlogs();
  // How long the loop may sleep: forever, or until the backlogs' next try.
  std::chrono::milliseconds poll_timeout() const;
  void drop_backlog(const std::string& routing_id, const std::string& why);
  void broadcast_outcome(const Caller& caller, dunedaq::druncschema::ResponseFlag flag,
                         const google::protobuf::Message* data);
  static std::string who(const Caller& caller);

  void shut_down();

  Config config_;
  std::vector<workers::ConfiguredBackend> backends_;
  // By worker name: the backend it serves, as its Ready must say.
  std::map<std::string, std::string> backend_of_worker_;
  zmq::socket_t clients_;            // ROUTER, drunc-pm/1 requests
  zmq::socket_t events_;             // XPUB, the event feed
  zmq::socket_t workers_;            // ROUTER, inproc, launcher workers
  zmq::socket_t stop_;               // PAIR, inproc, the owner's stop and reload signals
  std::unique_ptr<ZapHandler> zap_;  // curve mode only
  AccessList admitted_;              // curve mode: the admitted client keys
  std::string control_endpoint_;
  std::string events_endpoint_;
  EventPublisher publisher_;
  FeedPositionChild feed_position_;
  // Reused for every request and reply: parsing into and serializing from
  // warm messages allocates nothing (neither is used beyond one call).
  dunedaq::druncschema::Request request_;
  dunedaq::druncschema::Response response_;
  Registry registry_;
  Operations operations_;
  std::unique_ptr<Journal> journal_;  // on_broker_exit "keep" only
  struct Readoption {
    std::unordered_set<std::string> waiting;   // Adopt sent, not answered yet
    std::unordered_set<std::string> stopping;  // journalled while being killed: killed again once adopted
    std::size_t adopted = 0, ended = 0, lost = 0;
    bool announced = true;
  } readoption_;
  // Replies of the current batch, sent together at its end: a burst of
  // replies wakes the I/O thread and each client once instead of once per reply.
  std::vector<std::pair<std::vector<zmq::message_t>, std::string>> outbox_;
  // Replies a client has not taken yet beyond ZeroMQ's queue to it
  // (kClientQueueMessages), by routing id, with their size: ZeroMQ counts
  // messages, this counts bytes, so that max_unread_reply_bytes bounds what
  // one client that does not read costs.
  struct Backlog {
    std::deque<std::vector<zmq::message_t>> replies;
    std::size_t bytes = 0;
    std::size_t in_outbox = 0;
    std::size_t refused = 0;  // requests refused since it has been over max_unread_reply_bytes  // this turn's replies
                              // to it, not in the backlog yet (about: responses only)
  };
  std::unordered_map<std::string, Backlog> backlogs_;
  std::chrono::milliseconds backlog_retry_{1};  // 1 ms while they drain, longer while they do not
  bool shutting_down_ = false;
  std::string fatal_;  // why the broker must stop (a worker failed); empty while all is well
  // By worker name: the routing id of its running incarnation; empty while it has none.
  std::unordered_map<std::string, std::string> routing_ids_;
  WorkerStarter start_worker_;
  std::unordered_map<std::string, std::vector<std::chrono::steady_clock::time_point>> worker_restarts_;
  int worker_incarnations_ = 0;
  // By routing id: restarted workers not ready yet, and the commands waiting for them.
  std::unordered_map<std::string, std::vector<std::string>> unready_;
};

}  // namespace drunc::broker

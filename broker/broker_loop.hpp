// BrokerLoop: the broker thread's loop and everything it owns (see broker.hpp).
// Its source reads in sections: client requests, worker reports, replies.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "config.hpp"
#include "druncschema/process_manager.pb.h"
#include "druncschema/request_response.pb.h"
#include "drunc_zmq/events.pb.h"
#include "drunc_zmq/internal.pb.h"
#include "feed_position.hpp"
#include "publisher.hpp"
#include "registry.hpp"
#include "security.hpp"
#include "wire/envelope.hpp"
#include "zap_handler.hpp"

namespace drunc::broker {

inline constexpr const char* kWorkerEndpoint = "inproc://drunc-workers";
inline constexpr const char* kStopEndpoint = "inproc://drunc-broker-stop";
inline constexpr const char* kLocalWorker = "local";
inline std::string ssh_worker_name(int index) { return "ssh-" + std::to_string(index); }

// Where a host in allowed_hosts is reached: by the local launcher, or by an
// SSH worker with this login. "name:port" and "[address]:port" give a port.
struct HostRoute {
  std::string worker;  // routing id
  std::string host;    // without the port
  int port = 0;        // SSH only
  std::string user;    // SSH only
};

// Who asked, and how to answer: one per request in flight.
struct Caller {
  wire::ReplyAddress address;
  dunedaq::druncschema::Token token;
  std::string command;
  std::string user;    // the certificate's user (security.mode "curve"), else the token's user_name
  std::string target;  // what the request named (a query, a process), for the audit line
};

class BrokerLoop {
 public:
  // Binds every socket; throws ConfigError naming the setting on failure.
  BrokerLoop(zmq::context_t& context, Config config);

  // Blocks until each named worker has said it is ready, or throws.
  void wait_for_workers(const std::vector<std::string>& routing_ids);
  // Serves until "stop" arrives on the stop socket, then shuts down: kills
  // every managed process, answers every request still waiting (and those
  // that arrive meanwhile), publishes SERVER_SHUTDOWN, returns. "reload" on
  // the same socket re-reads security.client_certificates. When a launcher
  // worker fails, it shuts down the same way, then throws: a broker that
  // cannot start processes on some host must be restarted, not limp on.
  // Tests only: "fault" makes it throw at once, "fault-worker ID" makes
  // that worker fail.
  void run();

  int ssh_worker_count() const { return config_.ssh.workers; }
  const workers::SshSettings& ssh_settings() const { return config_.ssh; }
  const std::string& control_endpoint() const { return control_endpoint_; }
  const std::string& events_endpoint() const { return events_endpoint_; }

 private:
  // A boot or a restart waiting for its worker to report Started.
  struct PendingLaunch {
    Caller caller;
    dunedaq::druncschema::BootRequest boot;
    std::uint32_t generation = 1;
    bool restart = false;
    bool kill_on_start = false;     // a kill or terminate matched it while it was starting
    std::size_t next_host = 0;      // index in allowed_hosts of the next host to try
    std::string host;               // the host being tried
    std::string worker;             // its worker
    std::vector<std::string> failures;  // "host: reason", one per host tried
  };
  // A restart waiting for the current incarnation to exit.
  struct PendingRestart {
    Caller caller;
    bool kill_on_start = false;  // a kill matched it meanwhile: kill the new incarnation too
  };
  // A kill or terminate waiting for its processes to exit.
  struct PendingKill {
    Caller caller;
    std::vector<std::string> uuids;  // reply order
    std::unordered_set<std::string> waiting;
    // Each process as it was when it ended (or when matched, if dead already).
    std::unordered_map<std::string, dunedaq::druncschema::ProcessInstance> results;
  };

  // ---- Client requests
  void receive_client_messages();
  void handle_request(std::vector<zmq::message_t>& frames);
  // identity: the caller's admitted key in curve mode, else null; valid during the call only.
  void dispatch(const Caller& caller, wire::Command command, const dunedaq::druncschema::Request& request,
                const ClientIdentity* identity);
  // Curve mode: the identity of the key that sent frames, or NotAuthorised.
  const ClientIdentity& authenticate(std::vector<zmq::message_t>& frames, Caller& caller);
  // NotAuthorised unless identity's role and sessions allow the whole request.
  void authorise(const ClientIdentity& identity, wire::Command command, const dunedaq::druncschema::Request& request);
  // Sessions of the processes query matches (starting ones too) that identity may not touch.
  std::vector<std::string> forbidden_sessions(const ClientIdentity& identity, const CompiledQuery* query);
  void reload_access_list();
  void describe(const Caller& caller);
  void boot(const Caller& caller, const dunedaq::druncschema::Request& request);
  // query null: every process (terminate); an empty query: none (kill).
  void kill(const Caller& caller, const CompiledQuery* query);
  void restart(const Caller& caller, const dunedaq::druncschema::Request& request);
  void flush(const Caller& caller, const dunedaq::druncschema::Request& request);
  void ps(const Caller& caller, const dunedaq::druncschema::Request& request, const ClientIdentity* identity);
  void logs(const Caller& caller, const dunedaq::druncschema::Request& request);

  // ---- Launching and killing through workers
  void try_next_host(const std::string& uuid);
  HostRoute route(const std::string& allowed_host, const dunedaq::druncschema::ProcessMetadata& metadata) const;
  void send_kills(const std::vector<ProcessRecord*>& records);
  // False if the worker is not running (failed, or gone): nothing was sent.
  bool send_to_worker(const std::string& worker, const drunc_zmq::internal::WorkerCommand& command);

  // ---- Worker reports
  void receive_worker_reports();
  void handle_report(const drunc_zmq::internal::WorkerReport& report);
  void on_started(const std::string& uuid, std::int64_t pid);
  void on_start_failed(const std::string& uuid, const std::string& reason);
  void on_exited(ProcessRecord& record, const drunc_zmq::internal::Exited& exited);
  // Its processes are lost, its starts go to the next host, and the broker stops.
  void on_worker_failed(const std::string& worker, const std::string& reason);
  // Reported lost: the broker cannot know what became of it.
  void report_lost(ProcessRecord& record, const std::string& why);
  // Starts or kills from now on are refused: shutting down, or a worker failed.
  bool stopping() const { return shutting_down_ || !fatal_.empty(); }
  // A kill waiting for uuid has its answer: the process ended (record) or never started (null).
  void settle_kills(const std::string& uuid, const ProcessRecord* record);

  // ---- Replies
  void reply(const Caller& caller, dunedaq::druncschema::ResponseFlag flag, const google::protobuf::Message* data,
             bool more = false);
  // Completes the response (name, token, flag) and puts it in the outbox.
  // suffix: serialized Response fields appended to the response's bytes.
  void queue_reply(const Caller& caller, dunedaq::druncschema::ResponseFlag flag,
                   dunedaq::druncschema::Response& response, bool more, std::string_view suffix = {});
  // Sends the replies in the outbox.
  void send_replies();
  void reply_error(const Caller& caller, dunedaq::druncschema::ResponseFlag flag, const std::string& text);
  // suffix: serialized Response fields to add (ps: the feed's position).
  void reply_instances(const Caller& caller, const std::vector<ProcessRecord*>& records,
                       std::string_view suffix = {});
  void broadcast_outcome(const Caller& caller, dunedaq::druncschema::ResponseFlag flag,
                         const google::protobuf::Message* data);
  static std::string who(const Caller& caller);

  void shut_down();
  // Answers every request still waiting with an error saying why (shutdown deadline).
  void answer_waiting_requests(const std::string& why);

  Config config_;
  zmq::socket_t clients_;  // ROUTER, drunc-pm/1 requests
  zmq::socket_t events_;   // XPUB, the event feed
  zmq::socket_t workers_;  // ROUTER, inproc, launcher workers
  zmq::socket_t stop_;     // PAIR, inproc, the owner's stop and reload signals
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
  std::unordered_map<std::string, PendingLaunch> launches_;  // by uuid
  std::unordered_map<std::string, PendingRestart> restarts_waiting_for_exit_;  // by uuid
  std::list<PendingKill> kills_;
  // Replies of the current batch, sent together at its end: a burst of
  // replies wakes the I/O thread and each client once instead of once per reply.
  std::vector<std::pair<std::vector<zmq::message_t>, std::string>> outbox_;
  bool shutting_down_ = false;
  std::string fatal_;  // why the broker must stop (a worker failed); empty while all is well
  std::unordered_set<std::string> failed_workers_;
};

}  // namespace drunc::broker

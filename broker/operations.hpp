// Operations: the requests in flight, and the only way an answer leaves the
// broker. Owned by the broker thread; pure logic, no sockets.
//
// Every request gets one Reply when it arrives (Operations::receive). A Reply
// is a ticket: move-only, spent by the one final answer the broker sends with
// it, so that no request is answered twice, and one that is never spent is
// logged as a bug when it is dropped. Requests answered in the turn they
// arrive (describe, ps, logs, flush, every refusal) spend it at once. Boot,
// restart, kill and terminate wait for processes: their Reply moves into an
// Operation in the table, which holds everything they wait for. The broker
// loop hands it every event about processes; step() is the one function that
// takes an operation to its next phase, and says what to do and what to answer:
//
//  kind     phase         event                            next          action           answer
//  boot     starting      started                          done          kill if asked    the instance
//  boot     starting      start_failed, a host left        starting      launch next host -
//  boot     starting      start_failed, no host left       done          -                error: each host's reason
//  boot     starting      kill_requested                   starting      (kill_on_start)  -
//  restart  waiting_exit  ended                            starting      launch next gen. -
//  restart  waiting_exit  kill_requested                   waiting_exit  (kill_on_start)  -
//  restart  starting      (as boot)
//  kill     waiting       ended, others still waited for   waiting       -                -
//  kill     waiting       ended, the last one              done          -                the instances, in match order
//  any      any           abandoned                        done          -                error: the reason
//
// A boot or restart that ends without starting (start_failed, abandoned) also
// steps the kills waiting for its process with `ended`, with no instance.
//
// Events name a process (uuid): Operations::apply steps every operation that
// waits for it, kills before the launch of the same uuid. abandon_all ends every
// operation (shutdown deadline). A done operation leaves the table with its
// answer: nothing can answer it again.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "druncschema/generic.pb.h"
#include "druncschema/process_manager.pb.h"
#include "druncschema/request_response.pb.h"
#include "wire/envelope.hpp"

namespace drunc::broker {

// Who asked, and how to answer.
struct Caller {
  wire::ReplyAddress address;
  dunedaq::druncschema::Token token;
  std::string command;
  std::string user;    // the certificate's user (security.mode "curve"), else the token's user_name
  std::string target;  // what the request named (a query, a process), for the audit line
};

class Operations;

// The right to answer one request: see the header comment.
class Reply {
 public:
  Reply(Reply&& other) noexcept;
  Reply& operator=(Reply&& other) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();

  const Caller& caller() const { return caller_; }
  Caller& caller() { return caller_; }
  // False once spent (answered) or moved from.
  bool valid() const { return valid_; }
  // Marks it answered; the broker calls it as it sends the final answer.
  void spend() { valid_ = false; }

 private:
  friend class Operations;
  explicit Reply(Caller caller) : caller_(std::move(caller)) {}
  Caller caller_;
  bool valid_ = true;
};

using OperationId = std::uint64_t;

struct Operation {
  enum class Kind { boot, restart, kill };
  enum class Phase { starting, waiting_exit, waiting, done };

  Operation(OperationId id_, Kind kind_, Phase phase_, Reply reply_)
      : id(id_), kind(kind_), phase(phase_), reply(std::move(reply_)) {}

  OperationId id = 0;
  Kind kind = Kind::boot;
  Phase phase = Phase::starting;
  Reply reply;

  // boot, restart: the process to start and the hosts tried.
  std::string uuid;
  dunedaq::druncschema::BootRequest boot;
  std::uint32_t generation = 1;
  bool kill_on_start = false;         // a kill matched it while it was starting
  std::size_t next_host = 0;          // index in allowed_hosts of the next host to try
  std::string host;                   // the host being tried (set by step with the launch action)
  std::string worker;                 // its worker (set by the broker as it sends the launch)
  std::vector<std::string> failures;  // "host: reason", one per host tried

  // kill: the processes matched, in answer order, those still waited for,
  // and each one's instance as it ended (or as it was when matched).
  std::vector<std::string> uuids;
  std::unordered_set<std::string> waiting;
  std::unordered_map<std::string, dunedaq::druncschema::ProcessInstance> results;
};

struct Event {
  enum class Type { started, start_failed, ended, kill_requested, abandoned };
  Type type;
  std::string uuid;
  // started: the new incarnation; ended: the process as it ended, if it ever ran.
  std::optional<dunedaq::druncschema::ProcessInstance> instance;
  std::string reason;  // start_failed, abandoned

  static Event started(std::string uuid, dunedaq::druncschema::ProcessInstance instance);
  static Event start_failed(std::string uuid, std::string reason);
  static Event ended(std::string uuid, std::optional<dunedaq::druncschema::ProcessInstance> instance);
  static Event kill_requested(std::string uuid);
  // uuid: the launch of that process only (Operations::apply); else for abandon_all.
  static Event abandoned(std::string reason, std::string uuid = {});
};

// An answer step() decided on. data: the response's payload.
struct Answer {
  dunedaq::druncschema::ResponseFlag flag = dunedaq::druncschema::EXECUTED_SUCCESSFULLY;
  std::variant<dunedaq::druncschema::ProcessInstanceList, dunedaq::druncschema::PlainText> data;
};

struct Step {
  enum class Action { none, launch, kill_started };
  Action action = Action::none;
  std::optional<Answer> answer;  // set when the operation is done
};

// The transition table above. Pure: changes only op.
Step step(Operation& op, const Event& event);

// What the broker must do after an event: for each operation stepped, its
// action (on the operation, still in the table unless it is done) and, when
// it is done, its answer with the Reply to send it with.
struct Outcome {
  Step::Action action = Step::Action::none;
  Operation* operation = nullptr;  // while not done: valid until it is done
  std::string uuid;                // boot, restart: the process
  std::optional<Answer> answer;
  std::optional<Reply> reply;  // with answer: the operation is done
};

class Operations {
 public:
  // The ticket of a request that just arrived.
  Reply receive(Caller caller) { return Reply(std::move(caller)); }

  // Waits for a boot of a new process (uuid) on its allowed hosts: the first
  // outcome launches on the first host. generation > 1 for a restart whose process is dead.
  Outcome begin_boot(Reply reply, std::string uuid, dunedaq::druncschema::BootRequest boot,
                     std::uint32_t generation = 1);
  // A restart of a process still alive: waits for it to end, then launches.
  void begin_restart_after_exit(Reply reply, std::string uuid, dunedaq::druncschema::BootRequest boot,
                                std::uint32_t generation);
  // A kill of uuids (answer order): waits for those in waiting; the others'
  // instances are in results. Answered at once when nothing is waited for.
  Outcome begin_kill(Reply reply, std::vector<std::string> uuids, std::unordered_set<std::string> waiting,
                     std::unordered_map<std::string, dunedaq::druncschema::ProcessInstance> results);

  // Steps every operation waiting for event.uuid (see the header comment).
  std::vector<Outcome> apply(const Event& event);
  // Ends every operation with an error saying why.
  std::vector<Outcome> abandon_all(const std::string& reason);

  // The boot or restart of uuid, while starting or waiting for the old incarnation's exit.
  Operation* launch_of(const std::string& uuid);
  // Boots and restarts still starting (for authorisation and kill matching).
  std::vector<Operation*> starting();
  bool empty() const { return table_.empty(); }
  std::size_t size() const { return table_.size(); }

 private:
  Operation& add(Operation::Kind kind, Operation::Phase phase, Reply reply);
  // The outcome of step for op; removes op, with its reply in the outcome, if it is done.
  Outcome finish_if_done(std::list<Operation>::iterator op, Step step);
  // Steps op with event, collects what it says; removes op if done.
  void step_into(std::list<Operation>::iterator op, const Event& event, std::vector<Outcome>& outcomes);
  void remove(std::list<Operation>::iterator op);

  OperationId next_id_ = 1;
  std::list<Operation> table_;  // a list: Outcome::operation stays valid while others come and go
  std::unordered_map<std::string, std::list<Operation>::iterator> launches_;  // boot/restart by uuid
};

}  // namespace drunc::broker

#include "operations.hpp"

#include <spdlog/spdlog.h>

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

// ---- Reply -----------------------------------------------------------------

Reply::Reply(Reply&& other) noexcept : caller_(std::move(other.caller_)), valid_(other.valid_) { other.valid_ = false; }

Reply& Reply::operator=(Reply&& other) noexcept {
  if (this != &other) {
    caller_ = std::move(other.caller_);
    valid_ = other.valid_;
    other.valid_ = false;
  }
  return *this;
}

Reply::~Reply() {
  // Only a broker loop that failed outright drops unanswered requests (its clients time out).
  if (valid_) spdlog::error("a {} request was never answered", caller_.command);
}

// ---- Events ----------------------------------------------------------------

Event Event::started(std::string uuid, pm::ProcessInstance instance) {
  return {Type::started, std::move(uuid), std::move(instance), {}};
}
Event Event::start_failed(std::string uuid, std::string reason) {
  return {Type::start_failed, std::move(uuid), std::nullopt, std::move(reason)};
}
Event Event::ended(std::string uuid, std::optional<pm::ProcessInstance> instance) {
  return {Type::ended, std::move(uuid), std::move(instance), {}};
}
Event Event::kill_requested(std::string uuid) { return {Type::kill_requested, std::move(uuid), std::nullopt, {}}; }
Event Event::abandoned(std::string reason, std::string uuid) {
  return {Type::abandoned, std::move(uuid), std::nullopt, std::move(reason)};
}

// ---- The transitions -------------------------------------------------------

namespace {

Answer error(std::string text) {
  pm::PlainText plain;
  plain.set_text(std::move(text));
  return {pm::DRUNC_EXCEPTION_THROWN, std::move(plain)};
}

// Moves a starting operation to its next host, or ends it.
Step next_host_or_fail(Operation& op) {
  const auto& hosts = op.boot.process_restriction().allowed_hosts();
  if (op.next_host < static_cast<std::size_t>(hosts.size())) {
    op.host = hosts[static_cast<int>(op.next_host++)];
    op.worker.clear();
    return {Step::Action::launch, std::nullopt};
  }
  op.phase = Operation::Phase::done;
  std::string reason = "could not start " + op.boot.process_description().metadata().name() + " on any allowed host: ";
  for (std::size_t i = 0; i < op.failures.size(); ++i) reason += (i ? "; " : "") + op.failures[i];
  if (op.failures.empty()) reason += "none is listed";
  return {Step::Action::none, error(std::move(reason))};
}

Step step_starting(Operation& op, const Event& event) {
  switch (event.type) {
    case Event::Type::started: {
      op.phase = Operation::Phase::done;
      pm::ProcessInstanceList list;
      *list.add_values() = *event.instance;
      return {op.kill_on_start ? Step::Action::kill_started : Step::Action::none,
              Answer{pm::EXECUTED_SUCCESSFULLY, std::move(list)}};
    }
    case Event::Type::start_failed: op.failures.push_back(op.host + ": " + event.reason); return next_host_or_fail(op);
    case Event::Type::kill_requested: op.kill_on_start = true; return {};
    case Event::Type::ended:  // the previous incarnation's late report: not this one's business
    case Event::Type::abandoned: return {};
  }
  return {};
}

Step step_waiting_exit(Operation& op, const Event& event) {
  switch (event.type) {
    case Event::Type::ended: op.phase = Operation::Phase::starting; return next_host_or_fail(op);
    case Event::Type::kill_requested: op.kill_on_start = true; return {};
    case Event::Type::started:
    case Event::Type::start_failed:
    case Event::Type::abandoned: return {};
  }
  return {};
}

// A kill's answer: the instances in match order. A process that never
// started has no instance: it is left out.
Answer killed(Operation& op) {
  op.phase = Operation::Phase::done;
  pm::ProcessInstanceList list;
  for (const auto& uuid : op.uuids)
    if (auto found = op.results.find(uuid); found != op.results.end()) *list.add_values() = found->second;
  return {pm::EXECUTED_SUCCESSFULLY, std::move(list)};
}

Step step_waiting(Operation& op, const Event& event) {
  if (event.type != Event::Type::ended || op.waiting.erase(event.uuid) == 0) return {};
  if (event.instance) op.results.insert_or_assign(event.uuid, *event.instance);
  if (!op.waiting.empty()) return {};
  return {Step::Action::none, killed(op)};
}

}  // namespace

Step step(Operation& op, const Event& event) {
  if (op.phase == Operation::Phase::done) return {};
  if (event.type == Event::Type::abandoned) {
    op.phase = Operation::Phase::done;
    const std::string what = op.kind == Operation::Kind::kill
                                 ? std::to_string(op.waiting.size()) + " of the processes to kill"
                                 : op.boot.process_description().metadata().name();
    return {Step::Action::none, error(what + ": " + event.reason)};
  }
  switch (op.phase) {
    case Operation::Phase::starting: return step_starting(op, event);
    case Operation::Phase::waiting_exit: return step_waiting_exit(op, event);
    case Operation::Phase::waiting: return step_waiting(op, event);
    case Operation::Phase::done: return {};
  }
  return {};
}

// ---- The table -------------------------------------------------------------

Operation& Operations::add(Operation::Kind kind, Operation::Phase phase, Reply reply) {
  table_.emplace_back(next_id_++, kind, phase, std::move(reply));
  return table_.back();
}

Outcome Operations::begin_boot(Reply reply, std::string uuid, pm::BootRequest boot, std::uint32_t generation) {
  Operation& op = add(generation > 1 ? Operation::Kind::restart : Operation::Kind::boot, Operation::Phase::starting,
                      std::move(reply));
  op.uuid = std::move(uuid);
  op.boot = std::move(boot);
  op.generation = generation;
  const auto where = std::prev(table_.end());
  launches_[op.uuid] = where;
  return finish_if_done(where, next_host_or_fail(op));
}

void Operations::begin_restart_after_exit(Reply reply, std::string uuid, pm::BootRequest boot,
                                          std::uint32_t generation) {
  Operation& op = add(Operation::Kind::restart, Operation::Phase::waiting_exit, std::move(reply));
  op.uuid = std::move(uuid);
  op.boot = std::move(boot);
  op.generation = generation;
  launches_[op.uuid] = std::prev(table_.end());
}

Outcome Operations::begin_kill(Reply reply, std::vector<std::string> uuids, std::unordered_set<std::string> waiting,
                               std::unordered_map<std::string, pm::ProcessInstance> results) {
  Operation& op = add(Operation::Kind::kill, Operation::Phase::waiting, std::move(reply));
  op.uuids = std::move(uuids);
  op.waiting = std::move(waiting);
  op.results = std::move(results);
  // Nothing to wait for: the answer is the instances as they are.
  return finish_if_done(std::prev(table_.end()), op.waiting.empty() ? Step{Step::Action::none, killed(op)} : Step{});
}

Outcome Operations::finish_if_done(std::list<Operation>::iterator op, Step step) {
  Outcome outcome{step.action, &*op, op->uuid, std::move(step.answer), std::nullopt};
  if (op->phase == Operation::Phase::done) {
    outcome.reply.emplace(std::move(op->reply));
    outcome.operation = nullptr;
    remove(op);
  }
  return outcome;
}

void Operations::step_into(std::list<Operation>::iterator op, const Event& event, std::vector<Outcome>& outcomes) {
  Step result = step(*op, event);
  if (result.action == Step::Action::none && !result.answer) return;
  const bool launch_failed = op->kind != Operation::Kind::kill && op->phase == Operation::Phase::done &&
                             result.answer && result.answer->flag != pm::EXECUTED_SUCCESSFULLY;
  const std::string uuid = op->uuid;
  outcomes.push_back(finish_if_done(op, std::move(result)));
  // Kills waiting for a process that will not start have their answer now.
  if (launch_failed)
    for (auto& settled : apply(Event::ended(uuid, std::nullopt))) outcomes.push_back(std::move(settled));
}

void Operations::remove(std::list<Operation>::iterator op) {
  if (op->kind != Operation::Kind::kill) {
    auto found = launches_.find(op->uuid);
    if (found != launches_.end() && found->second == op) launches_.erase(found);
  }
  table_.erase(op);
}

std::vector<Outcome> Operations::apply(const Event& event) {
  std::vector<Outcome> outcomes;
  // Kills first: they answer with the process as it ended, before a restart
  // waiting for the same exit launches its next incarnation.
  if (event.type == Event::Type::ended)
    for (auto op = table_.begin(); op != table_.end();) {
      const auto next = std::next(op);  // kills never step other operations
      if (op->kind == Operation::Kind::kill && op->waiting.count(event.uuid)) step_into(op, event, outcomes);
      op = next;
    }
  if (auto launch = launches_.find(event.uuid); launch != launches_.end()) step_into(launch->second, event, outcomes);
  return outcomes;
}

std::vector<Outcome> Operations::abandon_all(const std::string& reason) {
  std::vector<Outcome> outcomes;
  const Event event = Event::abandoned(reason);
  while (!table_.empty()) step_into(table_.begin(), event, outcomes);
  return outcomes;
}

Operation* Operations::launch_of(const std::string& uuid) {
  auto found = launches_.find(uuid);
  return found == launches_.end() ? nullptr : &*found->second;
}

std::vector<Operation*> Operations::starting() {
  std::vector<Operation*> result;
  for (auto& op : table_)
    if (op.kind != Operation::Kind::kill && op.phase == Operation::Phase::starting) result.push_back(&op);
  return result;
}

}  // namespace drunc::broker

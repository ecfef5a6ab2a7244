// The process registry: every process the broker has booted and not flushed,
// in boot order. Owned by the broker thread alone; no locks.
//
// A record's life (each arrow publishes a state event, docs/PROTOCOL.md):
//
//   (boot answered Started) --booted--> running --kill sent--> stopping
//   running  --exited-->  exited        stopping --exited--> killed
//   running | stopping  --lost-->  lost   (its worker lost track of it: SSH connection dropped)
//   exited | killed | lost  --restarted (generation + 1)--> running
//   exited | killed | lost  --flushed--> (removed)
//   (journal, on_broker_exit "keep") --recovered--> as journalled; a running one
//   then --readopted--> running, or --exited | lost--> as its worker finds it
//
// A process that is still being started is not in the registry: it enters it
// when its worker reports Started, so nothing is ever half-registered.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "druncschema/process_manager.pb.h"
#include "query.hpp"

namespace drunc::broker {

enum class ProcessState { running, stopping, exited, killed, lost };

std::string_view state_name(ProcessState state);
// The state of a name state_name gives; running for any other.
ProcessState state_of_name(std::string_view name);
inline bool is_alive(ProcessState state) { return state == ProcessState::running || state == ProcessState::stopping; }

// The last lines of a process's output, over all its incarnations.
class LogRing {
 public:
  explicit LogRing(std::size_t capacity) : capacity_(capacity) {}
  void add(std::string line);
  // The last `count` lines (all of them if fewer), oldest first.
  std::vector<const std::string*> last(std::size_t count) const;
  std::size_t size() const { return lines_.size(); }

 private:
  std::size_t capacity_;
  std::deque<std::string> lines_;
};

// One topic of the event feed and the topic_sequence of its last event.
struct FeedTopic {
  std::string topic;
  std::uint64_t sequence = 0;
};

struct ProcessRecord {
  ProcessRecord(std::string uuid, dunedaq::druncschema::BootRequest boot, std::size_t log_capacity,
                std::uint64_t boot_order);

  std::string uuid;
  dunedaq::druncschema::BootRequest boot;  // as booted, with uuid and hostname filled in
  std::string worker;                      // routing id of the worker that runs it
  std::uint32_t generation = 1;            // incarnation: 1 at boot, +1 per restart
  ProcessState state = ProcessState::running;
  std::int32_t return_code = 0;
  std::int64_t pid = 0;
  std::uint64_t boot_order;  // rank among the records: queries answer in boot order
  LogRing logs;
  FeedTopic log_feed;    // "log/<session>/<name>/<uuid>"
  FeedTopic state_feed;  // "state/<session>/<name>/<uuid>"
  // on_broker_exit "keep": what the journal needs to find it again (journal.proto).
  std::uint64_t start_time = 0;
  std::string output_path;
  std::string status_path;
  std::uint64_t output_offset = 0;

  const dunedaq::druncschema::ProcessMetadata& metadata() const { return boot.process_description().metadata(); }
  const std::string& session() const { return metadata().session(); }
  const std::string& name() const { return metadata().name(); }
  dunedaq::druncschema::ProcessInstance instance() const;
  // instance(), serialized; kept until the next transition, since ps and
  // state events ask for it far more often than it changes.
  const std::string& instance_bytes() const;

  // Transitions; each returns the event name to publish.
  void on_kill_sent();  // running -> stopping (not published)
  // running -> exited, stopping -> killed; either -> lost when lost is set.
  std::string_view on_exited(std::int32_t code, bool lost = false);
  std::string_view on_restarted(std::uint32_t generation, std::int64_t pid, const std::string& host);
  // A broker started again found it in the journal in this state (not
  // published: the feed of a new broker starts with its re-adoption).
  void on_recovered(std::uint32_t generation, ProcessState state, std::int32_t return_code);

 private:
  mutable std::string instance_bytes_;  // empty: not serialized since the last transition
};

// A serialized ProcessInstanceList of these records, built from their
// instance_bytes() without parsing or copying messages.
std::string serialized_instance_list(const std::vector<ProcessRecord*>& records);

class Registry {
 public:
  explicit Registry(std::size_t log_capacity) : log_capacity_(log_capacity) {}

  // A process whose worker reported Started: the booted transition.
  ProcessRecord& add_booted(const std::string& uuid, dunedaq::druncschema::BootRequest boot, const std::string& host,
                            const std::string& worker, std::int64_t pid);
  ProcessRecord* find(const std::string& uuid);
  // Matching records in boot order; an empty query matches all of them when
  // empty_matches_all, none otherwise.
  std::vector<ProcessRecord*> match(const CompiledQuery& query, bool empty_matches_all);
  std::vector<ProcessRecord*> all();
  // Removes a dead record (the flushed transition).
  void remove(const std::string& uuid);
  std::size_t size() const { return index_.size(); }

 private:
  std::size_t log_capacity_;
  std::uint64_t boots_ = 0;
  std::list<ProcessRecord> records_;  // boot order; list keeps references stable
  std::unordered_map<std::string, std::list<ProcessRecord>::iterator> index_;
};

}  // namespace drunc::broker

// ProcessTable: the processes of a broker, kept current from the event feed
// by a subscriber that joins at any time (docs/PROTOCOL.md, "Joining late").
//
//   subscribe to "state/..." and, last, to "bcast/"
//   loop: table.reset(ps reply)            // Client::call(Command::ps, ...)
//         for each event: switch (table.apply(event))
//           case gap: take a new ps (back to reset)
//         no event for a second while !table.live(): take a new ps
//
// The ps query and the state subscription must cover the same processes:
// all of them ("state/" and an empty query), or one session's
// ("state/SESSION/" and a query on that session).
//
// The ps reply says where the feed stood when its list was made
// (FeedPosition). The broadcast COMMAND_RECEIVED of that very ps carries that
// position's sequence: receiving it proves the subscription was live from
// then on. From there, every state event of a session carries the next
// session_sequence, so a lost one shows at the next state event of its
// session. A lost event that is the session's last one shows only when the
// session changes again; a tool that must know sooner takes a ps again when
// describe's events_dropped grows.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

#include "client.hpp"

namespace drunc::client {

class ProcessTable {
 public:
  enum class Applied {
    applied,  // the event changed the table
    ignored,  // already in the table, or not a state event
    gap,      // events were lost (or the broker restarted): take a new ps and reset
  };

  // From a ps reply. Throws std::invalid_argument when it carries no FeedPosition.
  void reset(const dunedaq::druncschema::Response& ps_reply);
  Applied apply(const Event& event);

  // Whether the proof that the subscription was live has arrived: until it
  // has, the table may miss events.
  bool live() const { return live_; }
  // By uuid.
  const std::map<std::string, dunedaq::druncschema::ProcessInstance>& processes() const { return processes_; }

 private:
  Applied apply_state(const Event& event);

  drunc_zmq::FeedPosition position_;
  bool live_ = false;
  std::map<std::string, dunedaq::druncschema::ProcessInstance> processes_;
  std::unordered_map<std::string, std::uint64_t> session_sequences_;  // by session: the last state event applied
};

}  // namespace drunc::client

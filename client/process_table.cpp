#include "process_table.hpp"

#include <stdexcept>

namespace drunc::client {

namespace pm = dunedaq::druncschema;

void ProcessTable::reset(const pm::Response& ps_reply) {
  auto position = feed_position(ps_reply);
  pm::ProcessInstanceList list;
  if (!position || !ps_reply.data().UnpackTo(&list) || position->state_sequences_size() != list.values_size())
    throw std::invalid_argument("not a ps reply with the event feed's position");
  position_ = std::move(*position);
  live_ = false;
  processes_.clear();
  for (const auto& instance : list.values()) processes_[instance.uuid().uuid()] = instance;
  session_sequences_ = {position_.session_sequences().begin(), position_.session_sequences().end()};
}

ProcessTable::Applied ProcessTable::apply(const Event& event) {
  if (event.meta.publisher_id() != position_.publisher_id()) return Applied::gap;  // another broker, or restarted
  const auto sequence = event.meta.sequence();
  if (sequence < position_.sequence()) return Applied::ignored;  // older than the list
  if (!live_) {
    // The first event from the position on must be the ps's own COMMAND_RECEIVED.
    if (sequence == position_.sequence() && event.topic.rfind("bcast/", 0) == 0) {
      live_ = true;
      return Applied::ignored;
    }
    return Applied::gap;
  }
  if (event.topic.rfind("state/", 0) != 0) return Applied::ignored;
  return apply_state(event);
}

ProcessTable::Applied ProcessTable::apply_state(const Event& event) {
  pm::ProcessInstance instance;
  if (!instance.ParseFromString(event.payload)) return Applied::gap;
  // A session never seen had no state event when the list was made: it starts at 1.
  auto& last = session_sequences_[instance.process_description().metadata().session()];
  const auto sequence = event.meta.session_sequence();
  if (sequence <= last) return Applied::ignored;  // already in the list
  if (sequence != last + 1) return Applied::gap;  // a state event of this session was lost
  last = sequence;
  const auto& uuid = instance.uuid().uuid();
  if (event.meta.transition() == "flushed")
    processes_.erase(uuid);
  else
    processes_[uuid] = std::move(instance);
  return Applied::applied;
}

}  // namespace drunc::client

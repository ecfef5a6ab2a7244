#include "process_table.hpp"

#include <stdexcept>

namespace drunc::client {

namespace pm = dunedaq::druncschema;

void ProcessTable::reset(const pm::Response& ps_reply) {
  auto position = feed_position(ps_reply);
  pm::ProcessInstanceList list;
  if (!position || !ps_reply.data().UnpackTo(&list) ||
      position->state_sequences_size() != list.values_size())
    throw std::invalid_argument("not a ps reply with the event feed's position");
  position_ = std::move(*position);
  live_ = false;
  processes_.clear();
  state_sequences_.clear();
  for (int i = 0; i < list.values_size(); ++i) {
    const auto& uuid = list.values(i).uuid().uuid();
    processes_[uuid] = list.values(i);
    state_sequences_[uuid] = position_.state_sequences(i);
  }
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
  const auto& uuid = instance.uuid().uuid();
  const auto topic_sequence = event.meta.topic_sequence();
  auto known = state_sequences_.find(uuid);
  const std::uint64_t in_table = known == state_sequences_.end() ? 0 : known->second;
  if (topic_sequence <= in_table) return Applied::ignored;
  if (topic_sequence != in_table + 1) return Applied::gap;  // an event of this process was lost
  if (event.meta.transition() == "flushed") {
    processes_.erase(uuid);
    state_sequences_.erase(uuid);
    return Applied::applied;
  }
  processes_[uuid] = std::move(instance);
  state_sequences_[uuid] = topic_sequence;
  return Applied::applied;
}

}  // namespace drunc::client

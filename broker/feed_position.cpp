#include "feed_position.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

FeedPositionChild::FeedPositionChild(const std::string& broker_name) {
  auto* child = holder_.add_children();
  child->set_name(broker_name);
  child->set_flag(pm::EXECUTED_SUCCESSFULLY);
  child->mutable_data()->PackFrom(position_);  // sets the type URL once
}

std::string_view FeedPositionChild::bytes(std::uint64_t publisher_id, std::uint64_t sequence,
                                          const std::vector<ProcessRecord*>& records,
                                          const std::unordered_map<std::string, std::uint64_t>& session_sequences) {
  position_.set_publisher_id(publisher_id);
  position_.set_sequence(sequence);
  position_.clear_state_sequences();  // keeps its capacity
  for (const auto* record : records) position_.add_state_sequences(record->state_feed.sequence);
  // Sessions never leave the publisher's map: updating in place allocates only for new ones.
  auto& sessions = *position_.mutable_session_sequences();
  for (const auto& [session, last] : session_sequences) sessions[session] = last;
  position_.SerializeToString(holder_.mutable_children(0)->mutable_data()->mutable_value());
  holder_.SerializeToString(&bytes_);
  return bytes_;
}

}  // namespace drunc::broker

#include "publisher.hpp"

#include <random>

#include <spdlog/spdlog.h>

#include "wire/topic.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

EventPublisher::EventPublisher(zmq::socket_t& socket, std::string broker_name, std::string session) : socket_(socket) {
  std::random_device entropy;
  publisher_id_ = (static_cast<std::uint64_t>(entropy()) << 32) | entropy();
  broadcast_feed_.topic = wire::broadcast_topic(session, broker_name);
  broadcast_.mutable_emitter()->set_process(std::move(broker_name));
  broadcast_.mutable_emitter()->set_session(std::move(session));
  meta_.set_publisher_id(publisher_id_);
}

void EventPublisher::read_subscriptions() {
  // Each message is a subscription change: 1 or 0, then the topic prefix.
  // The XPUB passes only the first subscription to a prefix and the last
  // unsubscription (a subscriber leaving unsubscribes from all it had).
  zmq::message_t change;
  while (socket_.recv(change, zmq::recv_flags::dontwait)) {
    if (change.size() == 0 || change.more()) continue;  // not a subscription: a SUB never sends those
    const auto* bytes = change.data<char>();
    std::string prefix(bytes + 1, change.size() - 1);
    if (grant_) {
      // A change libzmq makes itself (a subscriber that left) has no metadata and needs nothing from us.
      try {
        (void)change.gets("User-Id");
      } catch (const zmq::error_t&) {
        continue;
      }
      for (const auto& granted : grant_(change, prefix)) {
        if (bytes[0] == 1) {
          socket_.set(zmq::sockopt::subscribe, granted);
          subscriptions_.insert(granted);
        } else if (bytes[0] == 0) {
          // Kept in subscriptions_: another subscriber may hold the same
          // prefix, and libzmq does not say when the last one goes.
          socket_.set(zmq::sockopt::unsubscribe, granted);
        }
      }
      continue;
    }
    if (bytes[0] == 1)
      subscriptions_.insert(std::move(prefix));
    else if (bytes[0] == 0)
      subscriptions_.erase(prefix);
  }
  broadcasts_wanted_ = wanted(broadcast_feed_.topic);
}

void EventPublisher::grant_subscriptions(Grant grant) { grant_ = std::move(grant); }

bool EventPublisher::wanted(const std::string& topic) const {
  for (const auto& prefix : subscriptions_)
    if (topic.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

void EventPublisher::skip(FeedTopic& topic, std::uint64_t events) {
  sequence_ += events;
  topic.sequence += events;
}

void EventPublisher::state(ProcessRecord& record, std::string_view transition) {
  send(record.state_feed, record.instance_bytes(), record.generation, transition,
       ++session_sequences_[record.session()]);
}

void EventPublisher::log_line(ProcessRecord& record, const std::string& line) {
  log_line_.mutable_uuid()->set_uuid(record.uuid);
  log_line_.set_line(line);
  log_line_.SerializeToString(&payload_buffer_);
  send(record.log_feed, payload_buffer_, record.generation, {});
}

void EventPublisher::broadcast_text(pm::BroadcastType type, const std::string& text) {
  broadcast_.set_type(type);
  plain_.set_text(text);
  broadcast_.mutable_data()->PackFrom(plain_);
  broadcast_.SerializeToString(&payload_buffer_);
  send(broadcast_feed_, payload_buffer_, 0, {});
}

void EventPublisher::broadcast_message(pm::BroadcastType type, const google::protobuf::Message& data) {
  if (!broadcasts_wanted_) return skip(broadcast_feed_, 1);
  broadcast_.set_type(type);
  broadcast_.mutable_data()->PackFrom(data);
  broadcast_.SerializeToString(&payload_buffer_);
  send(broadcast_feed_, payload_buffer_, 0, {});
}

void EventPublisher::send(FeedTopic& topic, std::string_view payload, std::uint32_t generation,
                          std::string_view transition, std::uint64_t session_sequence) {
  meta_.set_sequence(++sequence_);
  meta_.set_session_sequence(session_sequence);
  meta_.set_topic_sequence(++topic.sequence);
  meta_.set_generation(generation);
  meta_.mutable_transition()->assign(transition.data(), transition.size());
  meta_.set_time_unix_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  meta_.SerializeToString(&meta_buffer_);
  constexpr auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  // The socket is in no-drop mode: its first frame is refused when a
  // subscriber the event is for is at its high-water mark. Then the event is
  // counted and sent in drop mode, which delivers it to every subscriber with
  // room: one slow subscriber never holds back the others.
  const bool someone_full = !socket_.send(zmq::buffer(topic.topic), more);
  if (someone_full) {
    ++dropped_;
    socket_.set(zmq::sockopt::xpub_nodrop, 0);
    socket_.send(zmq::buffer(topic.topic), more);
  }
  socket_.send(zmq::buffer(payload), more);
  socket_.send(zmq::buffer(meta_buffer_), zmq::send_flags::dontwait);
  if (someone_full) {
    socket_.set(zmq::sockopt::xpub_nodrop, 1);
    report_drops();
  }
}

void EventPublisher::report_drops() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_drop_report_ < std::chrono::seconds(10)) return;
  spdlog::warn(
      "event feed: a subscriber is not keeping up: {} events refused to it ({} since start; it misses more until it "
      "catches up)",
      dropped_ - dropped_reported_, dropped_);
  dropped_reported_ = dropped_;
  last_drop_report_ = now;
}

}  // namespace drunc::broker

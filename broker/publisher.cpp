#include "publisher.hpp"

#include <chrono>
#include <random>

#include "wire/topic.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

EventPublisher::EventPublisher(zmq::socket_t& socket, std::string broker_name, std::string session)
    : socket_(socket) {
  std::random_device entropy;
  publisher_id_ = (static_cast<std::uint64_t>(entropy()) << 32) | entropy();
  broadcast_feed_.topic = wire::broadcast_topic(session, broker_name);
  broadcast_.mutable_emitter()->set_process(std::move(broker_name));
  broadcast_.mutable_emitter()->set_session(std::move(session));
  meta_.set_publisher_id(publisher_id_);
}

void EventPublisher::state(ProcessRecord& record, std::string_view transition) {
  send(record.state_feed, record.instance_bytes(), record.generation, transition);
}

void EventPublisher::log_line(ProcessRecord& record, const std::string& line) {
  log_line_.mutable_uuid()->set_uuid(record.uuid);
  log_line_.set_line(line);
  log_line_.SerializeToString(&payload_buffer_);
  send(record.log_feed, payload_buffer_, record.generation, {});
}

void EventPublisher::broadcast(pm::BroadcastType type, const std::string& text) {
  broadcast_.set_type(type);
  plain_.set_text(text);
  broadcast_.mutable_data()->PackFrom(plain_);
  broadcast_.SerializeToString(&payload_buffer_);
  send(broadcast_feed_, payload_buffer_, 0, {});
}

void EventPublisher::send(FeedTopic& topic, std::string_view payload, std::uint32_t generation,
                          std::string_view transition) {
  meta_.set_sequence(++sequence_);
  meta_.set_topic_sequence(++topic.sequence);
  meta_.set_generation(generation);
  meta_.mutable_transition()->assign(transition.data(), transition.size());
  meta_.set_time_unix_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  meta_.SerializeToString(&meta_buffer_);
  socket_.send(zmq::buffer(topic.topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket_.send(zmq::buffer(payload), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket_.send(zmq::buffer(meta_buffer_), zmq::send_flags::dontwait);
}

}  // namespace drunc::broker

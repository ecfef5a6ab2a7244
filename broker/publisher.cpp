#include "publisher.hpp"

#include <chrono>
#include <random>

#include "drunc_zmq/events.pb.h"
#include "druncschema/generic.pb.h"
#include "wire/topic.hpp"

namespace drunc::broker {

namespace pm = dunedaq::druncschema;

EventPublisher::EventPublisher(zmq::socket_t& socket, std::string broker_name, std::string session)
    : socket_(socket), broker_name_(std::move(broker_name)), session_(std::move(session)) {
  std::random_device entropy;
  publisher_id_ = (static_cast<std::uint64_t>(entropy()) << 32) | entropy();
}

void EventPublisher::state(const ProcessRecord& record, std::string_view transition) {
  send(wire::process_topic(wire::kStateKind, record.session(), record.name(), record.uuid), record.instance(),
       record.generation, transition);
}

void EventPublisher::log_line(const ProcessRecord& record, const std::string& line) {
  pm::LogLine payload;
  payload.mutable_uuid()->set_uuid(record.uuid);
  payload.set_line(line);
  send(wire::process_topic(wire::kLogKind, record.session(), record.name(), record.uuid), payload,
       record.generation, {});
}

void EventPublisher::broadcast(pm::BroadcastType type, const std::string& text) {
  pm::BroadcastMessage message;
  message.mutable_emitter()->set_process(broker_name_);
  message.mutable_emitter()->set_session(session_);
  message.set_type(type);
  pm::PlainText plain;
  plain.set_text(text);
  message.mutable_data()->PackFrom(plain);
  send(wire::broadcast_topic(session_, broker_name_), message, 0, {});
}

std::uint64_t EventPublisher::next_log_sequence(const ProcessRecord& record) const {
  const auto found =
      topic_sequences_.find(wire::process_topic(wire::kLogKind, record.session(), record.name(), record.uuid));
  return (found == topic_sequences_.end() ? 0 : found->second) + 1;
}

void EventPublisher::forget(const ProcessRecord& record) {
  topic_sequences_.erase(wire::process_topic(wire::kStateKind, record.session(), record.name(), record.uuid));
  topic_sequences_.erase(wire::process_topic(wire::kLogKind, record.session(), record.name(), record.uuid));
}

void EventPublisher::send(const std::string& topic, const google::protobuf::Message& payload,
                          std::uint32_t generation, std::string_view transition) {
  drunc_zmq::EventMeta meta;
  meta.set_publisher_id(publisher_id_);
  meta.set_sequence(++sequence_);
  meta.set_topic_sequence(++topic_sequences_[topic]);
  meta.set_generation(generation);
  meta.set_transition(std::string(transition));
  meta.set_time_unix_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
  socket_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  payload.SerializeToString(&buffer_);
  socket_.send(zmq::buffer(buffer_), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  meta.SerializeToString(&buffer_);
  socket_.send(zmq::buffer(buffer_), zmq::send_flags::dontwait);
}

}  // namespace drunc::broker

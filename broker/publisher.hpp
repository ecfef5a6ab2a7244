// EventPublisher: writes the event feed (docs/PROTOCOL.md, "Events") on the
// broker's PUB socket: [topic] [payload] [EventMeta]. Used by the broker
// thread only. A PUB socket never blocks: a subscriber that falls behind its
// high-water mark loses messages, and the sequence numbers show the gap.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "drunc_zmq/events.pb.h"
#include "druncschema/broadcast.pb.h"
#include "druncschema/generic.pb.h"
#include "druncschema/process_manager.pb.h"
#include "registry.hpp"

namespace drunc::broker {

class EventPublisher {
 public:
  EventPublisher(zmq::socket_t& socket, std::string broker_name, std::string session);

  std::uint64_t publisher_id() const { return publisher_id_; }

  // The ProcessInstance after a transition (booted, exited, killed, restarted, flushed).
  void state(ProcessRecord& record, std::string_view transition);
  void log_line(ProcessRecord& record, const std::string& line);
  void broadcast(dunedaq::druncschema::BroadcastType type, const std::string& text);
  // The topic_sequence the next log line of this process will carry.
  static std::uint64_t next_log_sequence(const ProcessRecord& record) { return record.log_feed.sequence + 1; }

 private:
  // payload: the serialized message of the topic's kind.
  void send(FeedTopic& topic, std::string_view payload, std::uint32_t generation, std::string_view transition);

  zmq::socket_t& socket_;
  std::uint64_t publisher_id_;
  std::uint64_t sequence_ = 0;
  FeedTopic broadcast_feed_;  // "bcast/<session>/<broker name>"
  // Reused for every event, so that publishing allocates nothing once warm.
  dunedaq::druncschema::BroadcastMessage broadcast_;
  dunedaq::druncschema::PlainText plain_;
  dunedaq::druncschema::LogLine log_line_;
  drunc_zmq::EventMeta meta_;
  std::string payload_buffer_;
  std::string meta_buffer_;
};

}  // namespace drunc::broker

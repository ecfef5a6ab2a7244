// EventPublisher: writes the event feed (docs/PROTOCOL.md, "Events") on the
// broker's PUB socket: [topic] [payload] [EventMeta]. Used by the broker
// thread only. A PUB socket never blocks: a subscriber that falls behind its
// high-water mark loses messages, and the sequence numbers show the gap.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include <google/protobuf/message.h>
#include <zmq.hpp>

#include "druncschema/broadcast.pb.h"
#include "registry.hpp"

namespace drunc::broker {

class EventPublisher {
 public:
  EventPublisher(zmq::socket_t& socket, std::string broker_name, std::string session);

  std::uint64_t publisher_id() const { return publisher_id_; }

  // The ProcessInstance after a transition (booted, exited, killed, restarted, flushed).
  void state(const ProcessRecord& record, std::string_view transition);
  void log_line(const ProcessRecord& record, const std::string& line);
  void broadcast(dunedaq::druncschema::BroadcastType type, const std::string& text);
  // The topic_sequence the next log line of this process will carry.
  std::uint64_t next_log_sequence(const ProcessRecord& record) const;
  // After the flushed event: the process's topics will not be used again.
  void forget(const ProcessRecord& record);

 private:
  void send(const std::string& topic, const google::protobuf::Message& payload, std::uint32_t generation,
            std::string_view transition);

  zmq::socket_t& socket_;
  std::string broker_name_;
  std::string session_;
  std::uint64_t publisher_id_;
  std::uint64_t sequence_ = 0;
  std::unordered_map<std::string, std::uint64_t> topic_sequences_;
  std::string buffer_;  // reused serialization buffer
};

}  // namespace drunc::broker

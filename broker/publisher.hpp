// EventPublisher: writes the event feed (docs/PROTOCOL.md, "Events") on the
// broker's XPUB socket: [topic] [payload] [EventMeta]. Used by the broker
// thread only.
//
// It never blocks: a subscriber that falls behind its high-water mark loses
// messages, the sequence numbers show it the gap, and the broker counts the
// messages some subscriber lost (dropped()). An XPUB rather than a PUB tells
// the broker what is subscribed, so events nobody subscribed to are counted
// in the sequences but never serialized.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
  // Events refused to a subscriber at its high-water mark, since start (a
  // lower bound of what subscribers lost: see docs/PROTOCOL.md, "Delivery").
  std::uint64_t dropped() const { return dropped_; }
  // The sequence of the last event counted (0 before the first).
  std::uint64_t sequence() const { return sequence_; }
  // By session: the session_sequence of its last state event.
  const std::unordered_map<std::string, std::uint64_t>& session_sequences() const { return session_sequences_; }

  // Takes the subscription changes queued on the socket; call it whenever
  // the socket is readable, so that they never pile up.
  void read_subscriptions();

  // For an XPUB in manual mode (ZMQ_XPUB_MANUAL): each subscription change
  // is applied as the prefixes grant returns for it (the message carries the
  // subscriber's metadata). Every prefix ever granted counts as wanted from
  // then on: libzmq does not tell when the last subscriber of a granted
  // prefix leaves, so events for a prefix nobody holds any more are still
  // built (never the reverse).
  using Grant = std::function<std::vector<std::string>(zmq::message_t& change, const std::string& prefix)>;
  void grant_subscriptions(Grant grant);

  // The ProcessInstance after a transition (booted, exited, killed, restarted,
  // flushed). Always built: state events are few, and a subscriber rebuilding
  // its table must get them even if its subscription reached ZeroMQ a moment
  // before it reached this publisher's list.
  void state(ProcessRecord& record, std::string_view transition);
  template <typename Lines>
  void log_lines(ProcessRecord& record, const Lines& lines) {
    if (!wanted(record.log_feed.topic)) return skip(record.log_feed, static_cast<std::uint64_t>(lines.size()));
    for (const std::string& line : lines) log_line(record, line);
  }
  // text is built only when a subscriber wants broadcasts.
  template <typename MakeText>
  void broadcast(dunedaq::druncschema::BroadcastType type, MakeText&& text) {
    if (!broadcasts_wanted_) return skip(broadcast_feed_, 1);
    broadcast_text(type, text());
  }
  // A broadcast whose data is a message other than PlainText.
  void broadcast_message(dunedaq::druncschema::BroadcastType type, const google::protobuf::Message& data);
  // The topic_sequence the next log line of this process will carry.
  static std::uint64_t next_log_sequence(const ProcessRecord& record) { return record.log_feed.sequence + 1; }

 private:
  bool wanted(const std::string& topic) const;
  // Counts events nobody subscribed to, so that sequences stay the same for everyone.
  void skip(FeedTopic& topic, std::uint64_t events);
  void log_line(ProcessRecord& record, const std::string& line);
  void broadcast_text(dunedaq::druncschema::BroadcastType type, const std::string& text);
  // payload: the serialized message of the topic's kind.
  void send(FeedTopic& topic, std::string_view payload, std::uint32_t generation, std::string_view transition,
            std::uint64_t session_sequence = 0);
  void report_drops();

  zmq::socket_t& socket_;
  std::uint64_t publisher_id_;
  std::uint64_t sequence_ = 0;
  FeedTopic broadcast_feed_;             // "bcast/<session>/<broker name>"
  std::set<std::string> subscriptions_;  // topic prefixes at least one subscriber asked for (or was granted)
  std::unordered_map<std::string, std::uint64_t> session_sequences_;  // of state events, by session
  bool broadcasts_wanted_ = false;
  Grant grant_;  // manual mode only
  std::uint64_t dropped_ = 0;
  std::uint64_t dropped_reported_ = 0;
  std::chrono::steady_clock::time_point last_drop_report_{};
  // Reused for every event, so that publishing allocates nothing once warm.
  dunedaq::druncschema::BroadcastMessage broadcast_;
  dunedaq::druncschema::PlainText plain_;
  dunedaq::druncschema::LogLine log_line_;
  drunc_zmq::EventMeta meta_;
  std::string payload_buffer_;
  std::string meta_buffer_;
};

}  // namespace drunc::broker

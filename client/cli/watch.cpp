#include "watch.hpp"

#include <unistd.h>

#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unordered_map>

#include "client.hpp"
#include "druncschema/broadcast.pb.h"
#include "druncschema/generic.pb.h"
#include "output.hpp"
#include "wire/topic.hpp"

namespace drunc::cli {
namespace {

namespace pm = dunedaq::druncschema;

bool shows_broadcasts(const WatchOptions& options) { return options.broadcasts || (!options.logs && !options.states); }

// Topic prefixes: kind, then session, then name, each only when given.
// A name alone cannot be a prefix (the session comes first): it is checked on receipt.
// Broadcasts are the broker's own (bcast/BROKER-SESSION/BROKER-NAME): always
// all of them, whatever the filters, and even when they are not shown, to
// see SERVER_SHUTDOWN.
std::vector<std::string> prefixes(const WatchOptions& options) {
  std::vector<std::string_view> kinds;
  const bool all = !options.logs && !options.states && !options.broadcasts;
  if (all || options.logs) kinds.push_back(wire::kLogKind);
  if (all || options.states) kinds.push_back(wire::kStateKind);
  std::vector<std::string> out;
  for (auto kind : kinds) {
    std::string prefix = std::string(kind) + "/";
    if (!options.session.empty()) {
      prefix += wire::encode_topic_field(options.session) + "/";
      if (!options.name.empty()) prefix += wire::encode_topic_field(options.name) + "/";
    }
    out.push_back(prefix);
  }
  out.push_back(std::string(wire::kBroadcastKind) + "/");
  return out;
}

// "2026-12-02 15:44:53.123", local time.
std::string timestamp(std::int64_t unix_ns) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  std::ostringstream text;
  text << std::put_time(&local, "%Y-%m-%d %H:%M:%S") << '.' << std::setw(3) << std::setfill('0')
       << (unix_ns / 1'000'000) % 1000;
  return text.str();
}

// The fields of a topic: kind, session, name[, uuid], decoded.
std::vector<std::string> fields_of(const std::string& topic) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const auto slash = topic.find('/', start);
    fields.push_back(wire::decode_topic_field(topic.substr(start, slash - start)));
    if (slash == std::string::npos) return fields;
    start = slash + 1;
  }
}

const char* colour(const std::string& kind, const std::string& transition, bool tty) {
  if (!tty) return "";
  if (kind == "bcast") return "\033[36m";
  if (kind == "state") return transition == "booted" || transition == "restarted" ? "\033[32m" : "\033[31m";
  return "";
}

// Says on stderr when this watcher lost events (a jump in a topic's
// sequence: it fell behind the broker's high-water mark) or the broker restarted.
class LossReporter {
 public:
  void check(const client::Event& event) {
    if (event.meta.publisher_id() != publisher_id_) {
      if (publisher_id_ != 0) std::cerr << "-- the broker restarted: sequences start again" << std::endl;
      publisher_id_ = event.meta.publisher_id();
      last_.clear();
    }
    auto [last, first] = last_.try_emplace(event.topic, event.meta.topic_sequence());
    if (!first && event.meta.topic_sequence() > last->second + 1)
      std::cerr << "-- " << event.meta.topic_sequence() - last->second - 1 << " events lost on " << event.topic
                << " (this watcher fell behind)" << std::endl;
    last->second = event.meta.topic_sequence();
  }

 private:
  std::uint64_t publisher_id_ = 0;
  std::unordered_map<std::string, std::uint64_t> last_;  // topic_sequence of the last event, by topic
};

// One event as a line: time, [session/name], what happened; coloured by kind.
void print_event(const std::string& kind, const std::vector<std::string>& fields, const client::Event& event,
                 const google::protobuf::Message& payload, bool tty) {
  std::cout << timestamp(event.meta.time_unix_ns()) << " " << colour(kind, event.meta.transition(), tty) << "["
            << fields[1] << "/" << fields[2] << "] ";
  if (kind == "log") {
    std::cout << static_cast<const pm::LogLine&>(payload).line();
  } else if (kind == "state") {
    const auto& instance = static_cast<const pm::ProcessInstance&>(payload);
    std::cout << event.meta.transition() << " (generation " << event.meta.generation() << ")";
    if (instance.status_code() == pm::ProcessInstance::DEAD) std::cout << " exit-code " << instance.return_code();
    std::cout << " on " << instance.process_description().metadata().hostname();
  } else {
    const auto& message = static_cast<const pm::BroadcastMessage&>(payload);
    pm::PlainText text;
    message.data().UnpackTo(&text);
    std::cout << pm::BroadcastType_Name(message.type()) << ": " << text.text();
  }
  std::cout << (tty ? "\033[0m" : "") << std::endl;
}

}  // namespace

int watch(const std::string& events_address, const WatchOptions& options) {
  client::Subscriber subscriber(events_address, prefixes(options), options.keys);
  subscriber.fail_fast_on_connect(true);
  const bool tty = options.color && !options.json;
  LossReporter losses;
  while (true) {
    auto event = subscriber.next(std::chrono::milliseconds(1000));
    if (!event) continue;
    losses.check(*event);
    const auto fields = fields_of(event->topic);
    if (fields.size() < 3) continue;
    const std::string& kind = fields[0];
    if (!options.name.empty() && kind != "bcast" && fields[2] != options.name) continue;
    std::unique_ptr<google::protobuf::Message> payload;
    if (kind == "log")
      payload = std::make_unique<pm::LogLine>();
    else if (kind == "state")
      payload = std::make_unique<pm::ProcessInstance>();
    else
      payload = std::make_unique<pm::BroadcastMessage>();
    if (!payload->ParseFromString(event->payload)) continue;
    const bool shutdown = kind == "bcast" && static_cast<pm::BroadcastMessage&>(*payload).type() == pm::SERVER_SHUTDOWN;
    const bool shown = kind != "bcast" || shows_broadcasts(options);

    if (shown && options.json) {
      std::cout << "{\"topic\":\"" << event->topic << "\",\"kind\":\"" << kind << "\",\"payload\":" << to_json(*payload)
                << ",\"meta\":" << to_json(event->meta) << "}" << std::endl;
    } else if (shown) {
      print_event(kind, fields, *event, *payload, tty);
    }
    if (shutdown) {
      std::cerr << "-- the broker shut down: watch ends" << std::endl;
      return 0;
    }
  }
}

}  // namespace drunc::cli

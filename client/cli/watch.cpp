#include "watch.hpp"

#include <unistd.h>

#include <iostream>
#include <unordered_map>

#include "client.hpp"
#include "druncschema/broadcast.pb.h"
#include "druncschema/generic.pb.h"
#include "output.hpp"
#include "wire/topic.hpp"

namespace drunc::cli {
namespace {

namespace pm = dunedaq::druncschema;

// Topic prefixes: kind, then session, then name, each only when given.
// A name alone cannot be a prefix (the session comes first): it is checked on receipt.
std::vector<std::string> prefixes(const WatchOptions& options) {
  std::vector<std::string_view> kinds;
  const bool all = !options.logs && !options.states && !options.broadcasts;
  if (all || options.logs) kinds.push_back(wire::kLogKind);
  if (all || options.states) kinds.push_back(wire::kStateKind);
  if (all || options.broadcasts) kinds.push_back(wire::kBroadcastKind);
  std::vector<std::string> out;
  for (auto kind : kinds) {
    std::string prefix = std::string(kind) + "/";
    if (!options.session.empty()) {
      prefix += wire::encode_topic_field(options.session) + "/";
      if (!options.name.empty() && kind != wire::kBroadcastKind) prefix += wire::encode_topic_field(options.name) + "/";
    }
    out.push_back(prefix);
  }
  return out;
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

}  // namespace

int watch(const std::string& events_address, const WatchOptions& options) {
  client::Subscriber subscriber(events_address, prefixes(options), options.keys);
  const bool tty = ::isatty(STDOUT_FILENO) && !options.json;
  const char* reset = tty ? "\033[0m" : "";
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
    if (kind == "log") payload = std::make_unique<pm::LogLine>();
    else if (kind == "state") payload = std::make_unique<pm::ProcessInstance>();
    else payload = std::make_unique<pm::BroadcastMessage>();
    if (!payload->ParseFromString(event->payload)) continue;

    if (options.json) {
      std::cout << "{\"topic\":\"" << event->topic << "\",\"kind\":\"" << kind << "\",\"payload\":" << to_json(*payload)
                << ",\"meta\":" << to_json(event->meta) << "}" << std::endl;
      continue;
    }
    const std::string who = "[" + fields[1] + "/" + fields[2] + "] ";
    std::cout << colour(kind, event->meta.transition(), tty) << who;
    if (kind == "log") {
      std::cout << static_cast<pm::LogLine&>(*payload).line();
    } else if (kind == "state") {
      const auto& instance = static_cast<pm::ProcessInstance&>(*payload);
      std::cout << event->meta.transition() << " (generation " << event->meta.generation() << ")";
      if (instance.status_code() == pm::ProcessInstance::DEAD) std::cout << " exit-code " << instance.return_code();
      std::cout << " on " << instance.process_description().metadata().hostname();
    } else {
      const auto& message = static_cast<pm::BroadcastMessage&>(*payload);
      pm::PlainText text;
      message.data().UnpackTo(&text);
      std::cout << pm::BroadcastType_Name(message.type()) << ": " << text.text();
    }
    std::cout << reset << std::endl;
  }
}

}  // namespace drunc::cli

#include "logs.hpp"

#include <iostream>
#include <memory>

#include <re2/re2.h>

#include "output.hpp"
#include "wire/topic.hpp"

namespace drunc::cli {
namespace {

namespace pm = dunedaq::druncschema;

class Printer {
 public:
  explicit Printer(const LogsOptions& options) : json_(options.json) {
    if (options.grep.empty()) return;
    re2::RE2::Options re2_options;
    re2_options.set_log_errors(false);
    pattern_ = std::make_unique<re2::RE2>(options.grep, re2_options);
    if (!pattern_->ok()) throw std::runtime_error("--grep \"" + options.grep + "\": " + pattern_->error());
  }

  void print(const pm::LogLine& line) const {
    if (pattern_ && !re2::RE2::PartialMatch(line.line(), *pattern_)) return;
    if (json_)
      std::cout << to_json(line) << "\n";
    else
      std::cout << line.line() << "\n";
    std::cout.flush();
  }

 private:
  bool json_;
  std::unique_ptr<re2::RE2> pattern_;
};

// Prints the lines of the broker's ring from sequence `from` on (at most
// `needed` of the last lines); returns the new cursor. from == 0: no line is
// owed, so none is reported lost.
std::uint64_t catch_up(client::Client& client, const pm::ProcessQuery& by_uuid, std::uint64_t from,
                       std::uint64_t needed, const Printer& printer) {
  std::vector<pm::LogLine> lines;
  pm::LogRequest request;
  *request.mutable_query() = by_uuid;
  request.set_how_far(static_cast<std::int32_t>(std::min<std::uint64_t>(needed, 1'000'000)));
  const auto cursor = client.logs(request, [&](const pm::LogLine& line) { lines.push_back(line); });
  const std::uint64_t first = cursor - lines.size();  // sequence of lines.front()
  if (from > 0 && first > from)
    std::cerr << "drunc-pm: " << first - from << " lines lost (no longer in the broker's memory)\n";
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (first + i >= from) printer.print(lines[i]);
  return cursor;
}

}  // namespace

int print_logs(client::Client& client, const LogsOptions& options) {
  const Printer printer(options);
  pm::LogRequest request;
  *request.mutable_query() = options.query;
  request.set_how_far(options.how_far);
  if (!options.follow) {
    client.logs(request, [&](const pm::LogLine& line) { printer.print(line); });
    return 0;
  }

  // Which process (the broker checks the query matches exactly one), and where the feed is.
  pm::ProcessInstance process;
  client.logs(request, [](const pm::LogLine&) {});  // fails like `logs` when the query is not exactly one
  const auto matched = client.ps(options.query);
  if (matched.values_size() != 1) throw std::runtime_error("the process to follow changed meanwhile");
  process = matched.values(0);
  drunc_zmq::EventFeed feed;
  if (!client.describe().broadcast().UnpackTo(&feed)) throw std::runtime_error("the broker gives no event feed");
  const auto& metadata = process.process_description().metadata();
  const std::string uuid = process.uuid().uuid();

  // Subscribe first, then read the ring: a line is then in one or both, never in neither.
  client::Subscriber subscriber(feed.address(),
                                {wire::process_topic(wire::kLogKind, metadata.session(), metadata.name(), uuid),
                                 wire::process_topic(wire::kStateKind, metadata.session(), metadata.name(), uuid)},
                                client.curve_keys());
  subscriber.fail_fast_on_connect(true);  // a feed address nobody serves: say so now
  if (!subscriber.wait_until_live(client, std::chrono::seconds(10)))
    throw std::runtime_error("the event feed at " + feed.address() + " does not answer");
  pm::ProcessQuery by_uuid;
  by_uuid.add_uuids()->set_uuid(uuid);
  std::uint64_t cursor = catch_up(client, by_uuid, 0, options.how_far > 0 ? options.how_far : 100, printer);
  if (process.status_code() == pm::ProcessInstance::DEAD) return 0;

  while (true) {
    auto event = subscriber.next(std::chrono::milliseconds(1000));
    if (!event) continue;
    if (event->topic.rfind("state/", 0) == 0) {
      const auto& transition = event->meta.transition();
      if (transition == "exited" || transition == "killed" || transition == "lost" || transition == "flushed") {
        // Every line precedes the exit on the feed; fetch any the subscription missed.
        catch_up(client, by_uuid, cursor, 1'000'000, printer);
        return 0;
      }
      continue;
    }
    const std::uint64_t sequence = event->meta.topic_sequence();
    if (sequence < cursor) continue;  // already printed from the ring
    if (sequence > cursor) cursor = catch_up(client, by_uuid, cursor, sequence - cursor + 1, printer);
    if (sequence < cursor) continue;
    pm::LogLine line;
    if (line.ParseFromString(event->payload)) printer.print(line);
    cursor = sequence + 1;
  }
}

}  // namespace drunc::cli

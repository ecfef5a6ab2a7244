// The event-feed scenario (issue 4): K local processes print lines as fast as
// they can; 1 or 4 subscribers count them, check their sequences and measure
// the time from print to receipt. Baseline, in the same run: a bare ZeroMQ
// PUB thread publishing as many events of the same sizes to as many
// subscribers, stamped when sent, read by the same subscriber code. With
// CURVE (issue 10): the broker with security.mode "curve" and a bare CURVE
// PUB, subscribers connecting with CURVE keys to both.
#include <time.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "broker.hpp"
#include "client.hpp"
#include "curve.hpp"
#include "drunc_zmq/events.pb.h"
#include "report.hpp"
#include "scenarios.hpp"
#include "thread_cpu.hpp"
#include "wire/topic.hpp"
#include "worker_link.hpp"

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;

constexpr const char* kSession = "feed-bench";
constexpr const char* kPrinter = "printer-";
constexpr const char* kBaselinePublisher = "bench-pub";
constexpr int kHighWaterMark = 100000;  // the broker's default events_high_water_mark

// CLOCK_MONOTONIC in nanoseconds: comparable between the processes of one machine.
std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// A line of `size` bytes (newline excluded): "<monotonic ns> xxxx...".
void stamp_line(std::string& line, int size) {
  line.assign(static_cast<std::size_t>(size), 'x');
  char stamp[24];
  const int length = std::snprintf(stamp, sizeof stamp, "%lld ", static_cast<long long>(monotonic_ns()));
  line.replace(0, static_cast<std::size_t>(std::min(length, size)), stamp,
               static_cast<std::size_t>(std::min(length, size)));
}

std::int64_t stamp_of(const std::string& line) { return std::strtoll(line.c_str(), nullptr, 10); }

// Keeps a steady rate: line i is due at start + i / rate (rate 0: no waiting).
class Pacer {
 public:
  explicit Pacer(int lines_per_second) : rate_(lines_per_second), start_(monotonic_ns()) {}
  void wait_for_line(long i) const {
    if (rate_ == 0) return;
    const std::int64_t due = start_ + i * 1'000'000'000LL / rate_;
    const timespec until{static_cast<time_t>(due / 1'000'000'000), static_cast<long>(due % 1'000'000'000)};
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr);
  }

 private:
  int rate_;
  std::int64_t start_;
};

struct Load {
  int printers;
  long lines_each;
  int size;
  int rate;  // lines per second per printer; 0: as fast as it can
  long lines() const { return printers * lines_each; }
};

struct Received {
  long lines = 0;
  long gaps = 0;                  // events lost, from jumps in topic_sequence
  std::vector<double> latencies;  // microseconds, from print to receipt
  Clock::time_point last;
};

// One subscriber: reads log lines and state events of the printers until
// `printers` of them have exited (or the feed is silent for 3 s).
void count_lines(drunc::client::Subscriber& subscriber, int printers, long expected_lines, Received& into) {
  into.latencies.reserve(static_cast<std::size_t>(expected_lines));
  std::unordered_map<std::string, std::uint64_t> sequences;
  pm::LogLine line;
  int exits = 0;
  while (exits < printers) {
    // Silence once the printers are done means the rest was lost (a PUB drops the newest).
    auto event = subscriber.next(std::chrono::seconds(3));
    if (!event) return;
    if (event->topic.find(std::string("/") + kPrinter) == std::string::npos) continue;  // a warm-up process
    if (event->topic.rfind("state/", 0) == 0) {
      if (event->meta.transition() == "exited") ++exits;
      continue;
    }
    auto& last = sequences[event->topic];
    into.gaps += static_cast<long>(event->meta.topic_sequence() - last - 1);
    last = event->meta.topic_sequence();
    if (!line.ParseFromString(event->payload)) continue;
    into.latencies.push_back(static_cast<double>(monotonic_ns() - stamp_of(line.line())) / 1e3);
    ++into.lines;
    into.last = Clock::now();
  }
}

struct Figures {
  double lines_per_second = 0;  // lines a subscriber received, on average, per second until the last line arrived
  double lost = 0;              // lines some subscriber did not receive, over all subscribers
  double latency_p50_us = 0, latency_p99_us = 0;
  double cpu_ms_per_10k = 0;  // of the publishing threads, per 10,000 lines
};

Figures summarise(std::vector<Received>& received, Clock::time_point start, double cpu_seconds, long lines) {
  Figures figures;
  std::vector<double> latencies;
  Clock::time_point end = start;
  long received_lines = 0;
  for (auto& r : received) {
    received_lines += r.lines;
    if (std::getenv("DRUNC_BENCH_DEBUG"))
      std::cerr << "subscriber: " << r.lines << " lines, " << r.gaps << " in gaps\n";
    figures.lost += static_cast<double>(lines - r.lines);
    latencies.insert(latencies.end(), r.latencies.begin(), r.latencies.end());
    end = std::max(end, r.last);
  }
  figures.lines_per_second = static_cast<double>(received_lines) / static_cast<double>(received.size()) /
                             std::chrono::duration<double>(end - start).count();
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    figures.latency_p50_us = latencies[latencies.size() / 2];
    figures.latency_p99_us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  figures.cpu_ms_per_10k = 1e3 * cpu_seconds * 1e4 / static_cast<double>(lines);
  return figures;
}

// Subscriber threads that each say when their subscription is live, then wait for `go`.
class Subscribers {
 public:
  Subscribers(const std::string& address, const std::vector<std::string>& prefixes, int count, int printers, long lines,
              const drunc::client::CurveKeys& keys)
      : received_(static_cast<std::size_t>(count)) {
    for (int s = 0; s < count; ++s)
      threads_.emplace_back([this, address, prefixes, printers, lines, s, keys] {
        drunc::client::Subscriber subscriber(address, prefixes, keys);
        while (!go_) {
          if (subscriber.next(std::chrono::milliseconds(20))) live_[s] = true;  // warm-up events
        }
        ++counting_;
        count_lines(subscriber, printers, lines, received_[static_cast<std::size_t>(s)]);
      });
  }
  ~Subscribers() { join(); }
  bool all_live() const {
    for (std::size_t s = 0; s < received_.size(); ++s)
      if (!live_[s]) return false;
    return true;
  }
  // Returns once every subscriber counts: the first line cannot slip into a warm-up read.
  void go() {
    go_ = true;
    while (counting_ < static_cast<int>(threads_.size())) std::this_thread::yield();
  }
  std::vector<Received>& join() {
    go_ = true;
    for (auto& thread : threads_)
      if (thread.joinable()) thread.join();
    return received_;
  }

 private:
  std::vector<Received> received_;
  std::atomic<bool> live_[16] = {};
  std::atomic<bool> go_{false};
  std::atomic<int> counting_{0};
  std::vector<std::thread> threads_;
};

pm::BootRequest printer_boot(const std::string& name, const std::string& exec, const std::vector<std::string>& args) {
  pm::BootRequest boot;
  auto* metadata = boot.mutable_process_description()->mutable_metadata();
  metadata->set_name(name);
  metadata->set_session(kSession);
  auto* command = boot.mutable_process_description()->add_executable_and_arguments();
  command->set_exec(exec);
  for (const auto& arg : args) command->add_args(arg);
  boot.mutable_process_restriction()->add_allowed_hosts("localhost");
  return boot;
}

double broker_cpu_seconds() { return thread_cpu_seconds("drunc-broker") + thread_cpu_seconds("drunc-local"); }

std::string self_path() {
  std::error_code ignored;
  return std::filesystem::read_symlink("/proc/self/exe", ignored).string();
}

drunc::client::CurveKeys keys_of(const CurveSetup* curve) {
  return curve ? curve->client_keys() : drunc::client::CurveKeys{};
}

Figures drunc_feed(const Load& load, int subscriber_count, const CurveSetup* curve) {
  const int printers = load.printers;
  drunc::broker::Config config;
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  config.events_high_water_mark = kHighWaterMark;
  if (curve) config.security = curve->broker_settings();
  drunc::broker::Broker broker(config);
  drunc::client::Client client(broker.control_endpoint(), std::chrono::seconds(60), keys_of(curve));
  const long lines = load.lines();
  Subscribers subscribers(broker.events_endpoint(),
                          {std::string("log/") + kSession + "/", std::string("state/") + kSession + "/"},
                          subscriber_count, printers, lines, keys_of(curve));
  while (!subscribers.all_live()) client.boot(printer_boot("warm-up", "true", {}));
  subscribers.go();

  const double cpu_before = broker_cpu_seconds();
  const auto start = Clock::now();
  std::vector<std::string> requests;
  for (int p = 0; p < printers; ++p) {
    const auto boot = printer_boot(kPrinter + std::to_string(p), self_path(),
                                   {"print", "--lines", std::to_string(load.lines_each), "--size",
                                    std::to_string(load.size), "--rate", std::to_string(load.rate)});
    requests.push_back(client.send(drunc::wire::Command::boot, &boot));
  }
  for (const auto& id : requests) client.wait(id, std::chrono::seconds(60));
  auto& received = subscribers.join();
  return summarise(received, start, broker_cpu_seconds() - cpu_before, lines);
}

// The baseline publisher: what the broker sends for the same lines, from one
// thread straight to a PUB socket, each line stamped as it is built.
void publish_like_the_broker(zmq::socket_t& socket, const Load& load) {
  drunc::workers::name_this_thread(kBaselinePublisher);
  const int printers = load.printers;
  std::vector<std::string> topics;
  const std::string uuid(36, 'u');
  for (int p = 0; p < printers; ++p)
    topics.push_back(drunc::wire::process_topic(drunc::wire::kLogKind, kSession, kPrinter + std::to_string(p), uuid));
  pm::LogLine line;
  line.mutable_uuid()->set_uuid(uuid);
  drunc_zmq::EventMeta meta;
  meta.set_publisher_id(1);
  meta.set_generation(1);
  std::string text, payload, meta_bytes;
  std::uint64_t sequence = 0;
  auto send = [&](const std::string& topic) {
    socket.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(payload), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(meta_bytes), zmq::send_flags::none);
  };
  const Pacer pacer(load.rate);
  for (long i = 1; i <= load.lines_each; ++i) {
    pacer.wait_for_line(i - 1);
    for (int p = 0; p < printers; ++p) {
      stamp_line(text, load.size);
      line.set_line(text);
      line.SerializeToString(&payload);
      meta.set_sequence(++sequence);
      meta.set_topic_sequence(static_cast<std::uint64_t>(i));
      meta.set_time_unix_ns(monotonic_ns());
      meta.SerializeToString(&meta_bytes);
      send(topics[static_cast<std::size_t>(p)]);
    }
  }
  meta.set_transition("exited");
  payload.clear();
  for (int p = 0; p < printers; ++p)
    send(drunc::wire::process_topic(drunc::wire::kStateKind, kSession, kPrinter + std::to_string(p), uuid));
}

Figures baseline_feed(const Load& load, int subscriber_count, const CurveSetup* curve) {
  const int printers = load.printers;
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::pub);
  if (curve) curve->make_server(socket);
  socket.set(zmq::sockopt::sndhwm, kHighWaterMark);
  socket.set(zmq::sockopt::linger, 0);
  socket.bind("tcp://127.0.0.1:*");
  const long lines = load.lines();
  Subscribers subscribers(socket.get(zmq::sockopt::last_endpoint),
                          {std::string("log/") + kSession + "/", std::string("state/") + kSession + "/"},
                          subscriber_count, printers, lines, keys_of(curve));
  const std::string warm_up = drunc::wire::process_topic(drunc::wire::kStateKind, kSession, "warm-up", "-");
  drunc_zmq::EventMeta meta;
  const std::string meta_bytes = meta.SerializeAsString();
  while (!subscribers.all_live()) {
    socket.send(zmq::buffer(warm_up), zmq::send_flags::sndmore);
    socket.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(meta_bytes), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pacing the warm-up, not a measurement
  }
  subscribers.go();
  const auto start = Clock::now();
  double cpu = 0;
  std::thread publisher([&] {
    const double before = thread_cpu_seconds(kBaselinePublisher);
    publish_like_the_broker(socket, load);
    cpu = thread_cpu_seconds(kBaselinePublisher) - before;
  });
  publisher.join();
  auto& received = subscribers.join();
  return summarise(received, start, cpu, lines);
}

}  // namespace

int print_lines(long count, int size, int rate) {
  std::string line;
  const Pacer pacer(rate);
  for (long i = 0; i < count; ++i) {
    pacer.wait_for_line(i);
    stamp_line(line, size);
    line += '\n';
    // One write per line: "print" is when the line leaves the process.
    if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
  }
  return 0;
}

void run_feed(int printers, long lines_each, int size, int repetitions, bool with_curve) {
  struct Case {
    Load load;
    int subscribers;
    std::string label;
  };
  const std::string flood = std::to_string(printers) + " processes x " + std::to_string(lines_each) + " lines of " +
                            std::to_string(size) + " B as fast as they can";
  // Paced well below what the machine can carry: the latency of the path itself, not of a queue.
  constexpr int kPacedRate = 10000;
  // With CURVE: the flood to one subscriber only.
  const std::vector<Case> cases =
      with_curve ? std::vector<Case>{{{printers, lines_each, size, 0}, 1, flood + ", 1 subscriber with CURVE"}}
                 : std::vector<Case>{
                       {{printers, lines_each, size, 0}, 1, flood + ", 1 subscriber"},
                       {{printers, lines_each, size, 0}, 4, flood + ", 4 subscribers"},
                       {{1, 2 * kPacedRate, size, kPacedRate}, 1, "1 process printing 10,000 lines/s, 1 subscriber"},
                   };
  std::unique_ptr<CurveSetup> curve;
  if (with_curve) curve = std::make_unique<CurveSetup>();
  for (const auto& c : cases) {
    std::vector<double> rate[2], lost[2], p50[2], p99[2], cpu[2];
    for (int r = 0; r < repetitions; ++r) {
      const Figures figures[2] = {drunc_feed(c.load, c.subscribers, curve.get()),
                                  baseline_feed(c.load, c.subscribers, curve.get())};
      for (int side = 0; side < 2; ++side) {
        rate[side].push_back(figures[side].lines_per_second);
        lost[side].push_back(figures[side].lost);
        p50[side].push_back(figures[side].latency_p50_us);
        p99[side].push_back(figures[side].latency_p99_us);
        cpu[side].push_back(figures[side].cpu_ms_per_10k);
      }
      std::cerr << "feed, " << c.label << ": repetition " << r + 1 << "/" << repetitions << " done" << std::endl;
    }
    if (c.load.rate == 0) {
      print_row("feed", c.label + ": lines per second to each subscriber", rate[0], rate[1], "lines/s", Better::larger);
      print_row("feed", c.label + ": lines lost, all subscribers together", lost[0], lost[1], "lines", Better::smaller);
    }
    print_row("feed", c.label + ": latency from print to subscriber, p50", p50[0], p50[1], "us", Better::smaller);
    print_row("feed", c.label + ": latency from print to subscriber, p99", p99[0], p99[1], "us", Better::smaller);
    print_row("feed", c.label + ": CPU per 10,000 lines of the broker and launcher threads (baseline: the PUB thread)",
              cpu[0], cpu[1], "ms", Better::smaller);
  }
}

}  // namespace bench

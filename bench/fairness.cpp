// Fairness (issue 11): the latency a well-behaved client sees for `ps` of one
// process, paced (one request, its answer, then a pause), while another
// client floods the broker, against the same client with nobody flooding,
// alternating within each repetition. drunc-broker runs as a program of its
// own (optionally on cores of its own, --broker-cpus), with 100 processes.
// Two floods:
// - greedy: ps of all 100 (~20 kB answers), 64 in flight, each answer read
//   and replaced by a new request at once;
// - deaf: ps of one process as fast as the socket takes them, answers never
//   read (a raw DEALER whose receive queue holds 100 messages, so the broker's
//   queue for it fills and stays full).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <zmq_addon.hpp>

#include "broker_program.hpp"
#include "client.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"
#include "wire/envelope.hpp"

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;
using drunc::wire::Command;

enum class Flood { none, greedy, deaf };

double percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(fraction * values.size()))];
}

// Round trips of `count` paced requests (after 100 to warm up), in microseconds.
std::vector<double> paced_round_trips(const std::string& endpoint, const pm::ProcessQuery& query, int count,
                                      std::chrono::microseconds interval) {
  drunc::client::Client client(endpoint, std::chrono::seconds(10));
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(count));
  auto next = Clock::now();
  for (int i = 0; i < count + 100; ++i) {
    std::this_thread::sleep_until(next);
    const auto start = Clock::now();
    client.wait(client.send(Command::ps, &query), std::chrono::seconds(10));
    if (i >= 100) times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    next = std::max(next + interval, Clock::now());
  }
  return times;
}

// Floods until `stop`; returns the requests answered (greedy) or sent (deaf).
long flood(Flood kind, const std::string& endpoint, const pm::ProcessQuery& one, const pm::ProcessQuery& all,
           const std::atomic<bool>& stop, std::atomic<bool>& started) {
  long count = 0;
  if (kind == Flood::greedy) {
    drunc::client::Client client(endpoint, std::chrono::seconds(10));
    for (int i = 0; i < 64; ++i) client.send(Command::ps, &all);
    started = true;
    while (!stop)
      if (client.receive(std::chrono::milliseconds(100))) {
        ++count;
        client.send(Command::ps, &all);
      }
    return count;
  }
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::rcvhwm, 100);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndtimeo, 100);
  socket.connect(endpoint);
  pm::Request request;
  request.mutable_data()->PackFrom(one);
  const std::string body = request.SerializeAsString();
  started = true;
  while (!stop) {
    auto frames = drunc::wire::encode_request(std::to_string(count + 1), "ps", body);
    if (zmq::send_multipart(socket, frames)) ++count;
  }
  return count;
}

struct Run {
  double p50, p99, flood_rate;
};

Run measure(Flood kind, const std::string& endpoint, const pm::ProcessQuery& one, const pm::ProcessQuery& all,
            int count, std::chrono::microseconds interval) {
  std::atomic<bool> stop{false}, started{kind == Flood::none};
  long flooded = 0;
  std::thread flooder;
  if (kind != Flood::none) flooder = std::thread([&] { flooded = flood(kind, endpoint, one, all, stop, started); });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(kind == Flood::none ? 0 : 200));  // the flood under way
  const auto start = Clock::now();
  const auto times = paced_round_trips(endpoint, one, count, interval);
  const double seconds = seconds_since(start);
  stop = true;
  if (flooder.joinable()) flooder.join();
  return {percentile(times, 0.5), percentile(times, 0.99), static_cast<double>(flooded) / seconds};
}

}  // namespace

void run_fairness(const FairnessOptions& options) {
  const double load_before = load_average();
  BrokerProgram broker(broker_program_path(options.broker), "", options.broker_cpus);
  drunc::client::Client setup(broker.control_endpoint(), std::chrono::seconds(10));
  const std::string one_uuid = boot_sleepers(setup, 100);
  pm::ProcessQuery one, all;
  one.add_uuids()->set_uuid(one_uuid);
  const auto interval = std::chrono::microseconds(options.interval_us);

  struct Series {
    std::vector<double> p50, p99, rate;
  };
  const double rss_before = sample_process(broker.pid()).rss_kib / 1024;
  Series quiet, greedy, deaf;
  std::string rss_series;  // the broker's RSS after each flood, MiB
  for (int r = 0; r < options.repetitions; ++r) {
    for (auto [kind, series] : {std::pair{Flood::none, &quiet}, {Flood::greedy, &greedy}, {Flood::deaf, &deaf}}) {
      const auto run = measure(kind, broker.control_endpoint(), one, all, options.samples, interval);
      series->p50.push_back(run.p50);
      series->p99.push_back(run.p99);
      series->rate.push_back(run.flood_rate);
      if (kind != Flood::none) {
        char text[48];
        const double at_once = sample_process(broker.pid()).rss_kib / 1024;
        std::this_thread::sleep_for(std::chrono::seconds(1));
        std::snprintf(text, sizeof text, "%s%.0f then %.0f", rss_series.empty() ? "" : ", ", at_once,
                      sample_process(broker.pid()).rss_kib / 1024);
        rss_series += text;
      }
    }
    std::cerr << "fairness: repetition " << r + 1 << "/" << options.repetitions << " done" << std::endl;
  }
  const double rss_after = sample_process(broker.pid()).rss_kib / 1024;
  setup.terminate();
  const int exit_status = broker.stop();
  long dropped = 0;
  {
    std::ifstream log(broker.log_path());
    for (std::string line; std::getline(log, line);)
      if (line.find("dropped") != std::string::npos || line.find("discarded") != std::string::npos) ++dropped;
  }
  const double load_after = load_average();

  const std::string paced = "ps of one process, paced every " + std::to_string(options.interval_us) + " us";
  const std::string greedy_text = "a client keeping 64 ps of all 100 in flight (reads its answers)";
  const std::string deaf_text = "a client sending ps of one process as fast as it can, never reading the answers";
  for (auto [label, series] : {std::pair{greedy_text, &greedy}, {deaf_text, &deaf}}) {
    print_row("fairness", paced + ": p50, while " + label + " (baseline: nobody floods)", series->p50, quiet.p50, "us",
              Better::smaller);
    print_row("fairness", paced + ": p99, while " + label + " (baseline: nobody floods)", series->p99, quiet.p99, "us",
              Better::smaller);
  }
  const Stats greedy_rate = stats_of(greedy.rate), deaf_rate = stats_of(deaf.rate);
  std::printf("| fairness | the flood's rate: %s | %.0f req/s answered (%.0f-%.0f) | - | - |\n", greedy_text.c_str(),
              greedy_rate.median, greedy_rate.min, greedy_rate.max);
  std::printf("| fairness | the flood's rate: %s | %.0f req/s sent (%.0f-%.0f) | - | - |\n", deaf_text.c_str(),
              deaf_rate.median, deaf_rate.min, deaf_rate.max);
  std::printf(
      "note: fairness: load average (1 min) %.2f at start, %.2f at end; broker exit status %d; broker RSS "
      "%.1f MiB before the first flood, %.1f MiB after the last (flooders gone); %ld lines of the broker's log "
      "say replies were dropped or discarded\n",
      load_before, load_after, exit_status, rss_before, rss_after, dropped);
  std::printf(
      "note: fairness: broker RSS after each flood (greedy, deaf, greedy, ...), at once and 1 s after its client left: "
      "%s MiB\n",
      rss_series.c_str());
  std::fflush(stdout);
}

}  // namespace bench

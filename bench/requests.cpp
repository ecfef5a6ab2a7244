#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "broker.hpp"
#include "client.hpp"
#include "curve.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"
#include "thread_cpu.hpp"
#include "wire/envelope.hpp"
#include "worker_link.hpp"

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;
using drunc::wire::Command;

constexpr const char* kBrokerThread = "drunc-broker";
constexpr const char* kEchoThread = "bench-echo";

// The baseline: a ROUTER in its own thread answering each request with the
// exact Response bytes the broker gave for that command (same frames, same
// size); with curve, a CURVE server with the broker's key (and no ZAP handler).
class EchoServer {
 public:
  explicit EchoServer(std::map<std::string, std::string> replies, const CurveSetup* curve = nullptr)
      : replies_(std::move(replies)), socket_(context_, zmq::socket_type::router) {
    if (curve) curve->make_server(socket_);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void serve() {
    drunc::workers::name_this_thread(kEchoThread);
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop_) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) == 0) continue;
      std::vector<zmq::message_t> frames;
      while (zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        auto decoded = drunc::wire::decode_request(frames);
        if (auto* request = std::get_if<drunc::wire::RequestEnvelope>(&decoded)) {
          auto reply = drunc::wire::encode_reply(request->from, false, replies_[request->command]);
          zmq::send_multipart(socket_, reply);
        }
        frames.clear();
      }
    }
  }

  std::map<std::string, std::string> replies_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Request {
  std::string label;
  Command command;
  const google::protobuf::Message* data;
};

// Round-trip times of `count` requests, one in flight, in microseconds.
std::vector<double> round_trips(const std::string& endpoint, const Request& request, int count,
                                const drunc::client::CurveKeys& keys) {
  drunc::client::Client client(endpoint, std::chrono::seconds(10), keys);
  std::vector<double> times;
  times.reserve(count);
  for (int i = 0; i < count + 100; ++i) {  // the first 100 warm up
    const auto start = Clock::now();
    client.wait(client.send(request.command, request.data), std::chrono::seconds(10));
    if (i >= 100) times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return times;
}

double percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(fraction * values.size()))];
}

struct Throughput {
  double requests_per_second;
  double server_cpu_ms_per_1000;  // CPU of the answering thread per 1,000 replies
};

// `clients` clients, each keeping `window` requests in flight for `duration`;
// server_thread names the thread that answers them.
Throughput throughput(const std::string& endpoint, const Request& request, int clients, int window,
                      std::chrono::milliseconds duration, const char* server_thread,
                      const drunc::client::CurveKeys& keys) {
  std::atomic<long> done{0};
  std::vector<std::thread> threads;
  const double cpu_before = thread_cpu_seconds(server_thread);
  const auto start = Clock::now();
  const auto end = start + duration;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      drunc::client::Client client(endpoint, std::chrono::seconds(10), keys);
      int in_flight = 0;
      long answered = 0;
      for (; in_flight < window; ++in_flight) client.send(request.command, request.data);
      while (in_flight > 0) {
        if (!client.receive(std::chrono::seconds(10))) break;
        --in_flight;
        ++answered;
        if (Clock::now() < end) {
          client.send(request.command, request.data);
          ++in_flight;
        }
      }
      done += answered;
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = thread_cpu_seconds(server_thread) - cpu_before;

  return {static_cast<double>(done) / seconds, 1e6 * cpu / static_cast<double>(std::max(1L, done.load()))};
}

}  // namespace

void run_requests(int repetitions, const std::vector<std::string>& only, bool with_curve) {
  auto wanted = [&](const std::string& quantity) {
    return only.empty() || std::any_of(only.begin(), only.end(),
                                       [&](const auto& part) { return quantity.find(part) != std::string::npos; });
  };
  drunc::broker::Config config;
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  std::unique_ptr<CurveSetup> curve;
  drunc::client::CurveKeys keys;
  if (with_curve) {
    curve = std::make_unique<CurveSetup>();
    config.security = curve->broker_settings();
    keys = curve->client_keys();
  }
  drunc::broker::Broker broker(config);
  drunc::client::Client setup(broker.control_endpoint(), std::chrono::seconds(10), keys);
  const std::string one_uuid = boot_sleepers(setup, 100);
  pm::ProcessQuery one, all;
  one.add_uuids()->set_uuid(one_uuid);
  // With CURVE (issue 10): ps of one process only, its latency and its throughput at 16 clients.
  const std::vector<Request> requests = with_curve
                                            ? std::vector<Request>{{"ps of one process with CURVE", Command::ps, &one}}
                                            : std::vector<Request>{{"ps of one process", Command::ps, &one},
                                                                   {"ps of all 100", Command::ps, &all},
                                                                   {"describe", Command::describe, nullptr}};
  // The echo answers with the very bytes the broker answers.
  std::map<std::string, std::string> replies;
  replies["ps"] = setup.call(Command::ps, &one).SerializeAsString();
  replies["describe"] = setup.call(Command::describe, nullptr).SerializeAsString();
  EchoServer echo_one(replies, curve.get());
  replies["ps"] = setup.call(Command::ps, &all).SerializeAsString();
  EchoServer echo_all(replies, curve.get());

  for (const auto& request : requests) {
    if (!wanted(request.label + ": latency")) continue;
    const auto& echo = request.data == &all ? echo_all : echo_one;
    std::map<double, std::pair<std::vector<double>, std::vector<double>>> by_percentile;
    for (int r = 0; r < repetitions; ++r) {
      const auto ours = round_trips(broker.control_endpoint(), request, 2000, keys);
      const auto base = round_trips(echo.endpoint(), request, 2000, keys);
      for (double p : {0.5, 0.99, 0.999}) {
        by_percentile[p].first.push_back(percentile(ours, p));
        by_percentile[p].second.push_back(percentile(base, p));
      }
    }
    for (const auto& [p, values] : by_percentile) {
      char label[96];
      std::snprintf(label, sizeof label, "%s: latency p%g, 1 in flight", request.label.c_str(), p * 100);
      print_row("requests", label, values.first, values.second, "us", Better::smaller);
    }
  }
  for (int clients : with_curve ? std::vector<int>{16} : std::vector<int>{1, 4, 16}) {
    for (const auto& request : requests) {
      const std::string quantity =
          request.label + ": throughput, " + std::to_string(clients) + " clients x 64 in flight";
      const std::string cpu_quantity =
          request.label + ": CPU of the answering thread per 1,000 requests, " + std::to_string(clients) + " clients";
      if (request.command == Command::describe || !(wanted(quantity) || (clients == 16 && wanted(cpu_quantity))))
        continue;
      const auto& echo = request.data == &all ? echo_all : echo_one;
      std::vector<double> ours, base, ours_cpu, base_cpu;
      for (int r = 0; r < repetitions; ++r) {
        const auto a =
            throughput(broker.control_endpoint(), request, clients, 64, std::chrono::seconds(1), kBrokerThread, keys);
        const auto b = throughput(echo.endpoint(), request, clients, 64, std::chrono::seconds(1), kEchoThread, keys);
        ours.push_back(a.requests_per_second);
        base.push_back(b.requests_per_second);
        ours_cpu.push_back(a.server_cpu_ms_per_1000);
        base_cpu.push_back(b.server_cpu_ms_per_1000);
      }
      print_row("requests", quantity, ours, base, "req/s", Better::larger);
      if (clients == 16) print_row("requests", cpu_quantity, ours_cpu, base_cpu, "ms", Better::smaller);
    }
  }
  // The same with a subscriber to every event: each request then costs the
  // broker its two broadcasts (COMMAND_RECEIVED, COMMAND_EXECUTION_SUCCESS).
  const std::string subscribed =
      "ps of one process: throughput, 16 clients x 64 in flight, a subscriber to every event";
  const std::string subscribed_cpu =
      "ps of one process: CPU of the answering thread per 1,000 requests, 16 clients, a subscriber to every event";
  if (!with_curve && (wanted(subscribed) || wanted(subscribed_cpu))) {
    std::atomic<bool> stop{false};
    std::atomic<long> events{0};
    std::thread subscriber([&] {
      drunc::client::Subscriber feed(broker.events_endpoint(), {""});
      while (!stop)
        if (feed.next(std::chrono::milliseconds(50))) ++events;
    });
    // Live once broadcasts of these requests arrive.
    while (events == 0) setup.call(Command::describe, nullptr);
    std::vector<double> ours, base, ours_cpu, base_cpu;
    for (int r = 0; r < repetitions; ++r) {
      const auto a =
          throughput(broker.control_endpoint(), requests[0], 16, 64, std::chrono::seconds(1), kBrokerThread, keys);
      const auto b = throughput(echo_one.endpoint(), requests[0], 16, 64, std::chrono::seconds(1), kEchoThread, keys);
      ours.push_back(a.requests_per_second);
      base.push_back(b.requests_per_second);
      ours_cpu.push_back(a.server_cpu_ms_per_1000);
      base_cpu.push_back(b.server_cpu_ms_per_1000);
    }
    stop = true;
    subscriber.join();
    print_row("requests", subscribed, ours, base, "req/s", Better::larger);
    print_row("requests", subscribed_cpu, ours_cpu, base_cpu, "ms", Better::smaller);
  }
  setup.terminate();
}

}  // namespace bench

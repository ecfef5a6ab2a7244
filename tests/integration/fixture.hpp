// Shared by the integration tests: a real Broker on wildcard loopback ports,
// clients and event subscribers on it, and helpers to build requests.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker.hpp"
#include "client.hpp"

namespace test {

namespace pm = dunedaq::druncschema;
using namespace std::chrono_literals;

// Deadline for anything a test waits for: generous, for a loaded 2-core machine.
inline constexpr auto kPatience = std::chrono::milliseconds(20000);

class TestBroker {
 public:
  explicit TestBroker(const std::function<void(drunc::broker::Config&)>& adjust = {});

  drunc::client::Client client() const { return drunc::client::Client(broker_->control_endpoint(), kPatience); }
  const std::string& control_endpoint() const { return broker_->control_endpoint(); }
  const std::string& events_endpoint() const { return broker_->events_endpoint(); }

 private:
  std::unique_ptr<drunc::broker::Broker> broker_;
};

// A subscriber whose subscription is known to be live (ZeroMQ's slow joiner):
// Subscriber::wait_until_live, before the constructor returns.
class Events {
 public:
  Events(const TestBroker& broker, const std::vector<std::string>& prefixes);
  // On any broker's feed, made live through client.
  Events(const std::string& events_endpoint, drunc::client::Client& client, const std::vector<std::string>& prefixes);
  // The next event for which accept returns true; fails the test after kPatience.
  drunc::client::Event wait_for(const std::function<bool(const drunc::client::Event&)>& accept);
  // The next state event of this uuid with this transition.
  pm::ProcessInstance wait_for_state(const std::string& uuid, const std::string& transition,
                                     std::uint32_t* generation = nullptr);
  // The next log line of this uuid equal to text (subscribe to "log/" for it).
  void wait_for_line(const std::string& uuid, const std::string& text);
  // Log lines of this uuid until each of texts has been seen, in any order.
  void wait_for_lines(const std::string& uuid, std::set<std::string> texts);

 private:
  drunc::client::Subscriber subscriber_;
};

pm::BootRequest boot_request(const std::string& name, const std::string& exec,
                             const std::vector<std::string>& args = {}, const std::string& session = "test");
pm::ProcessQuery query_uuid(const std::string& uuid);
pm::ProcessQuery query_name(const std::string& name_regex);
pm::ProcessQuery query_session(const std::string& session);

// Boots and returns the uuid (REQUIREs success and one instance).
std::string boot(drunc::client::Client& client, const pm::BootRequest& request);

// Every line `logs` returns for a uuid (how_far lines).
std::vector<std::string> log_lines(drunc::client::Client& client, const std::string& uuid, int how_far = 1000);

// The processes on this machine with `marker` in their command line.
std::vector<int> processes_with_marker(const std::string& marker);
// Whether all these processes have ended within kPatience (waits on pidfds).
bool wait_until_gone(const std::vector<int>& pids);

// The whole content of a file (empty if it cannot be read).
std::string read_file(const std::filesystem::path& path);

// A string unique to this test run, to find its processes with.
std::string unique_marker(const std::string& base);

// The PlainText of an error response.
std::string error_text(const pm::Response& response);

}  // namespace test

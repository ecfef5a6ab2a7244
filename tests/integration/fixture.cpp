#include "fixture.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

namespace test {

TestBroker::TestBroker(const std::function<void(drunc::broker::Config&)>& adjust) {
  spdlog::set_level(spdlog::level::warn);
  drunc::broker::Config config;
  config.name = "test-pm";
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  if (adjust) adjust(config);
  broker_ = std::make_unique<drunc::broker::Broker>(config);
}

Events::Events(const TestBroker& broker, const std::vector<std::string>& prefixes)
    : subscriber_(broker.events_endpoint(), prefixes) {
  auto client = broker.client();
  REQUIRE(subscriber_.wait_until_live(client, kPatience));
}

Events::Events(const std::string& events_endpoint, drunc::client::Client& client,
               const std::vector<std::string>& prefixes)
    : subscriber_(events_endpoint, prefixes, client.curve_keys()) {
  REQUIRE(subscriber_.wait_until_live(client, kPatience));
}

drunc::client::Event Events::wait_for(const std::function<bool(const drunc::client::Event&)>& accept) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) FAIL("the expected event did not come");
    auto event = subscriber_.next(left);
    if (!event) continue;
    if (accept(*event)) return std::move(*event);
  }
}

pm::ProcessInstance Events::wait_for_state(const std::string& uuid, const std::string& transition,
                                           std::uint32_t* generation) {
  pm::ProcessInstance instance;
  auto event = wait_for([&](const drunc::client::Event& event) {
    if (event.topic.rfind("state/", 0) != 0 || event.meta.transition() != transition) return false;
    pm::ProcessInstance candidate;
    return candidate.ParseFromString(event.payload) && candidate.uuid().uuid() == uuid;
  });
  instance.ParseFromString(event.payload);
  if (generation) *generation = event.meta.generation();
  return instance;
}

void Events::wait_for_line(const std::string& uuid, const std::string& text) { wait_for_lines(uuid, {text}); }

void Events::wait_for_lines(const std::string& uuid, std::set<std::string> texts) {
  while (!texts.empty()) {
    wait_for([&](const drunc::client::Event& event) {
      pm::LogLine line;
      return event.topic.rfind("log/", 0) == 0 && line.ParseFromString(event.payload) && line.uuid().uuid() == uuid &&
             texts.erase(line.line()) == 1;
    });
  }
}

pm::BootRequest boot_request(const std::string& name, const std::string& exec, const std::vector<std::string>& args,
                             const std::string& session) {
  pm::BootRequest request;
  auto* description = request.mutable_process_description();
  description->mutable_metadata()->set_name(name);
  description->mutable_metadata()->set_user("tester");
  if (!session.empty()) description->mutable_metadata()->set_session(session);
  auto* command = description->add_executable_and_arguments();
  command->set_exec(exec);
  for (const auto& argument : args) command->add_args(argument);
  request.mutable_process_restriction()->add_allowed_hosts("localhost");
  return request;
}

pm::ProcessQuery query_uuid(const std::string& uuid) {
  pm::ProcessQuery query;
  query.add_uuids()->set_uuid(uuid);
  return query;
}

pm::ProcessQuery query_name(const std::string& name_regex) {
  pm::ProcessQuery query;
  query.add_names(name_regex);
  return query;
}

pm::ProcessQuery query_session(const std::string& session) {
  pm::ProcessQuery query;
  query.set_session(session);
  return query;
}

std::string boot(drunc::client::Client& client, const pm::BootRequest& request) {
  const auto list = client.boot(request);
  REQUIRE(list.values_size() == 1);
  return list.values(0).uuid().uuid();
}

std::vector<std::string> log_lines(drunc::client::Client& client, const std::string& uuid, int how_far) {
  pm::LogRequest request;
  *request.mutable_query() = query_uuid(uuid);
  request.set_how_far(how_far);
  std::vector<std::string> lines;
  client.logs(request, [&](const pm::LogLine& line) { lines.push_back(line.line()); });
  return lines;
}

std::vector<int> processes_with_marker(const std::string& marker) {
  std::vector<int> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline;
    try {
      std::ifstream file(entry.path() / "cmdline");
      cmdline.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    } catch (const std::ios_base::failure&) {
      continue;  // it ended while being read (read fails with ESRCH): gone
    }
    // A zombie has an empty command line: it is dead already.
    if (cmdline.find(marker) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

bool wait_until_gone(const std::vector<int>& pids) {
  std::vector<pollfd> fds;
  for (int pid : pids) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd >= 0) fds.push_back({fd, POLLIN, 0});  // else: gone already
  }
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  std::size_t ended = 0;
  while (ended < fds.size()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || ::poll(fds.data(), fds.size(), static_cast<int>(left.count())) <= 0) break;
    ended = 0;
    for (auto& fd : fds)
      if (fd.revents & POLLIN) ++ended;
  }
  for (auto& fd : fds) ::close(fd.fd);
  return ended == fds.size();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

std::string unique_marker(const std::string& base) {
  static std::atomic<int> counter{0};
  return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::string error_text(const pm::Response& response) { return drunc::client::response_text(response); }

}  // namespace test

#include "spawn_backend.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

#include "worker_link.hpp"

namespace test {
namespace {

namespace workers = drunc::workers;
namespace pb = drunc_zmq::internal;
using Clock = std::chrono::steady_clock;

constexpr const char* kName = "spawn";
constexpr const char* kWorker = "spawn";

struct SpawnSettings {
  std::string prefix = "spawn:";
};

struct Child {
  std::string uuid;
  std::uint32_t generation = 0;
  pid_t pid = -1;
  int output = -1;  // read end of its stdout and stderr; -1 once at end of file
  std::string partial;
  std::optional<int> status;
  std::optional<Clock::time_point> sigkill_at;
};

// The worker thread: a plain poll loop over the command socket and the
// children's output pipes, with a short timeout to reap exits.
class SpawnWorker : public workers::Worker {
 public:
  SpawnWorker(zmq::context_t& context, std::string endpoint, std::string routing_id)
      : stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    thread_ = std::thread([this, &context, endpoint = std::move(endpoint), routing_id = std::move(routing_id)] {
      try {
        zmq::socket_t socket = workers::connect_to_broker(context, endpoint, routing_id);
        workers::send_ready(socket, kName);
        run(socket);
      } catch (const std::exception& error) {
        workers::report_worker_failure(context, endpoint, routing_id, error.what());
      }
      for (auto& [uuid, child] : children_) {
        ::kill(-child.pid, SIGKILL);
        ::waitpid(child.pid, nullptr, 0);
      }
    });
  }
  ~SpawnWorker() override {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
    ::close(stop_fd_);
  }

 private:
  void run(zmq::socket_t& socket) {
    while (true) {
      std::vector<zmq::pollitem_t> items = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, stop_fd_, ZMQ_POLLIN, 0}};
      std::vector<Child*> readers;
      for (auto& [uuid, child] : children_)
        if (child.output >= 0) {
          items.push_back({nullptr, child.output, ZMQ_POLLIN, 0});
          readers.push_back(&child);
        }
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20));
      if (items[1].revents & ZMQ_POLLIN) return;
      workers::drain_commands(socket, kWorker, [&](const pb::WorkerCommand& command) {
        if (command.has_launch()) launch(socket, command.launch());
        for (const auto& target : command.kill().targets()) {
          auto found = children_.find(target.uuid());
          if (found == children_.end() || found->second.generation != target.generation()) continue;
          ::kill(-found->second.pid, SIGQUIT);
          found->second.sigkill_at = Clock::now() + std::chrono::milliseconds(command.kill().timeout_ms());
        }
      });
      for (std::size_t i = 0; i < readers.size(); ++i)
        if (items[i + 2].revents) read_output(socket, *readers[i]);
      reap(socket);
    }
  }

  void launch(zmq::socket_t& socket, const pb::Launch& launch) {
    pb::WorkerReport report;
    report.set_uuid(launch.uuid());
    report.set_generation(launch.generation());
    const auto& description = launch.description();
    if (description.executable_and_arguments_size() == 0) {
      report.mutable_start_failed()->set_reason("nothing to run");
      workers::send_report(socket, report);
      return;
    }
    const auto& command = description.executable_and_arguments(0);
    std::vector<std::string> words = {command.exec()};
    words.insert(words.end(), command.args().begin(), command.args().end());
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    std::vector<std::string> variables;
    for (char** variable = environ; *variable; ++variable) variables.emplace_back(*variable);
    for (const auto& [name, value] : description.env()) variables.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& variable : variables) envp.push_back(variable.data());
    envp.push_back(nullptr);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int error = ::posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(pipe_fds[1]);
    if (error != 0) {
      ::close(pipe_fds[0]);
      report.mutable_start_failed()->set_reason("posix_spawn " + command.exec() + ": " + std::strerror(error));
      workers::send_report(socket, report);
      return;
    }
    children_[launch.uuid()] = Child{launch.uuid(), launch.generation(), pid, pipe_fds[0], {}, {}, {}};
    report.mutable_started()->set_pid(pid);
    workers::send_report(socket, report);
  }

  void read_output(zmq::socket_t& socket, Child& child) {
    char buffer[4096];
    const ssize_t n = ::read(child.output, buffer, sizeof buffer);
    if (n < 0) return;
    pb::WorkerReport report;
    report.set_uuid(child.uuid);
    report.set_generation(child.generation);
    if (n == 0) {
      ::close(child.output);
      child.output = -1;
      if (!child.partial.empty()) report.mutable_output()->add_lines(std::move(child.partial));
    } else {
      child.partial.append(buffer, static_cast<std::size_t>(n));
      for (auto end = child.partial.find('\n'); end != std::string::npos; end = child.partial.find('\n')) {
        report.mutable_output()->add_lines(child.partial.substr(0, end));
        child.partial.erase(0, end + 1);
      }
    }
    if (report.has_output()) workers::send_report(socket, report);
  }

  // Exited goes after the last output line.
  void reap(zmq::socket_t& socket) {
    for (auto it = children_.begin(); it != children_.end();) {
      Child& child = it->second;
      if (child.sigkill_at && *child.sigkill_at <= Clock::now()) {
        ::kill(-child.pid, SIGKILL);
        child.sigkill_at.reset();
      }
      int status = 0;
      if (!child.status && ::waitpid(child.pid, &status, WNOHANG) == child.pid) child.status = status;
      if (!child.status || child.output >= 0) {
        ++it;
        continue;
      }
      pb::WorkerReport report;
      report.set_uuid(child.uuid);
      report.set_generation(child.generation);
      const int code = WIFEXITED(*child.status) ? WEXITSTATUS(*child.status) : 128 + WTERMSIG(*child.status);
      report.mutable_exited()->set_return_code(code);
      report.mutable_exited()->set_reason("ended with " + std::to_string(code) + " (spawn backend)");
      workers::send_report(socket, report);
      it = children_.erase(it);
    }
  }

  int stop_fd_;
  std::map<std::string, Child> children_;  // by uuid; the worker thread's alone
  std::thread thread_;
};

class SpawnBackend : public workers::Backend {
 public:
  explicit SpawnBackend(SpawnSettings settings) : settings_(std::move(settings)) {}
  std::vector<std::string> worker_names() const override { return {kWorker}; }
  std::optional<workers::Placement> place(const std::string& allowed_host,
                                          const dunedaq::druncschema::ProcessMetadata&) const override {
    if (allowed_host.rfind(settings_.prefix, 0) != 0) return std::nullopt;
    return workers::Placement{kWorker, allowed_host.substr(settings_.prefix.size()), 0, {}};
  }
  std::unique_ptr<workers::Worker> start_worker(zmq::context_t& context, const std::string& endpoint,
                                                const std::string&, const std::string& routing_id) const override {
    return std::make_unique<SpawnWorker>(context, endpoint, routing_id);
  }

 private:
  SpawnSettings settings_;
};

}  // namespace

drunc::workers::BackendType spawn_backend_type() {
  return {kName,
          {},
          [] { return std::any(SpawnSettings{}); },
          [](const workers::SettingsSection& input) {
            SpawnSettings settings;
            if (input.section) {
              workers::SettingsReader read(*input.section, input.source, "backends.spawn.");
              read.only({"prefix"});
              read.string("prefix", settings.prefix, false);
            }
            return std::any(settings);
          },
          [](const std::any& settings) -> std::shared_ptr<const workers::Backend> {
            return std::make_shared<SpawnBackend>(std::any_cast<const SpawnSettings&>(settings));
          }};
}

}  // namespace test

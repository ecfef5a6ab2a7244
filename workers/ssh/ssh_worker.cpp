#include "ssh/ssh_worker.hpp"

#include <sys/epoll.h>

#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "drunc_zmq/internal.pb.h"
#include "launch_script.hpp"
#include "ssh/pool.hpp"
#include "ssh/remote_command.hpp"
#include "ssh/ssh_backend.hpp"
#include "worker_loop.hpp"

namespace drunc::workers {
namespace {

namespace pb = drunc_zmq::internal;
using ssh::Clock;
using ssh::RemoteProcess;

// The SSH worker's loop: the processes it was asked to run, by uuid, and the
// pool of connections they run on.
class Loop : public WorkerLoop, private ssh::PoolOwner {
 public:
  Loop(zmq::socket_t& socket, int stop_fd, SshSettings settings)
      : WorkerLoop(socket, stop_fd, "ssh worker"), settings_(std::move(settings)), pool_(settings_, *this) {}
  // Channels first: they belong to the pool's sessions.
  ~Loop() override { processes_.clear(); }

 private:
  // ---- Commands from the broker
  void on_command(const pb::WorkerCommand& command) override;
  void launch(const pb::Launch& launch);
  void kill(const pb::Kill& kill);

  // ---- The loop's turn
  void on_ready(int fd, std::uint32_t events) override { pool_.on_ready(fd, events); }
  void before_wait() override { pool_.remove_closed_connections(); }
  int milliseconds_to_wait() const override;
  void after_events() override;

  // ---- PoolOwner
  void watch(int fd, std::uint32_t events) override { WorkerLoop::watch(fd, events); }
  void change_watch(int fd, std::uint32_t events) override { WorkerLoop::change_watch(fd, events); }
  void unwatch(int fd) override { WorkerLoop::unwatch(fd); }
  void report(RemoteProcess& process, pb::WorkerReport& report) override;
  void start_failed(RemoteProcess& process, const std::string& reason) override;
  void exited(RemoteProcess& process, const pb::Exited& exited) override;
  void forget(RemoteProcess& process);

  const SshSettings settings_;
  ssh::Pool pool_;
  std::unordered_map<std::string, std::unique_ptr<RemoteProcess>> processes_;  // by uuid
};

// ---- Commands from the broker ------------------------------------------------

void Loop::on_command(const pb::WorkerCommand& command) {
  if (command.has_launch()) launch(command.launch());
  if (command.has_kill()) kill(command.kill());
}

void Loop::launch(const pb::Launch& launch) {
  pb::WorkerReport refusal;
  refusal.set_uuid(launch.uuid());
  refusal.set_generation(launch.generation());
  if (processes_.contains(launch.uuid())) {
    refusal.mutable_start_failed()->set_reason("a process with this uuid is still running");
    send(refusal);
    return;
  }
  auto process = std::make_unique<RemoteProcess>();
  process->uuid = launch.uuid();
  process->generation = launch.generation();
  process->endpoint = {launch.user(), launch.host(), static_cast<int>(launch.port())};
  try {
    process->command = remote_command(build_launch_script(launch.description(), incarnation_of(launch)));
  } catch (const InvalidDescription& error) {
    refusal.mutable_start_failed()->set_reason(error.what());
    send(refusal);
    return;
  }
  RemoteProcess& added = *process;
  processes_.emplace(launch.uuid(), std::move(process));
  pool_.assign(added);
}

void Loop::kill(const pb::Kill& kill) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kill.timeout_ms());
  std::vector<ssh::Connection*> touched;
  for (const auto& target : kill.targets()) {
    auto found = processes_.find(target.uuid());
    if (found == processes_.end() || found->second->generation != target.generation()) continue;
    RemoteProcess& process = *found->second;
    if (process.phase != RemoteProcess::Phase::running) continue;
    process.to_write += "QUIT\n";
    process.sigkill_at = deadline;
    touched.push_back(process.connection);
  }
  for (auto* connection : touched)
    if (!connection->closed) pool_.pump(*connection);
}

// ---- The loop's turn -------------------------------------------------------------

int Loop::milliseconds_to_wait() const {
  if (pool_.pending()) return 0;
  std::optional<Clock::time_point> next = pool_.next_timer();
  for (const auto& [uuid, process] : processes_)
    if (process->sigkill_at && (!next || *process->sigkill_at < *next)) next = process->sigkill_at;
  if (!next) return -1;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  return wait < 0 ? 0 : static_cast<int>(wait);
}

void Loop::after_events() {
  pool_.pump_pending();
  const auto now = Clock::now();
  std::vector<ssh::Connection*> to_pump;
  for (auto& [uuid, process] : processes_) {
    if (!process->sigkill_at || *process->sigkill_at > now) continue;
    process->sigkill_at.reset();
    process->to_write += "KILL\n";
    if (process->connection) to_pump.push_back(process->connection);
  }
  for (auto* connection : to_pump)
    if (!connection->closed) pool_.pump(*connection);
  pool_.fire_timers(now);
  pool_.remove_closed_connections();
}

// ---- Reports -------------------------------------------------------------------------

void Loop::report(RemoteProcess& process, pb::WorkerReport& report) {
  report.set_uuid(process.uuid);
  report.set_generation(process.generation);
  send(report);
}

void Loop::start_failed(RemoteProcess& process, const std::string& reason) {
  pb::WorkerReport failed;
  failed.mutable_start_failed()->set_reason(reason);
  report(process, failed);
  forget(process);
}

void Loop::exited(RemoteProcess& process, const pb::Exited& exited) {
  pb::WorkerReport ended;
  *ended.mutable_exited() = exited;
  report(process, ended);
  forget(process);
}

void Loop::forget(RemoteProcess& process) {
  pool_.forget(process);
  processes_.erase(process.uuid);  // destroys the channel
}

}  // namespace

SshWorker::SshWorker(zmq::context_t& context, std::string worker_endpoint, std::string routing_id, SshSettings settings)
    : WorkerThread(context, std::move(worker_endpoint), std::move(routing_id), kSshBackend,
                   [settings = std::move(settings)](zmq::socket_t& socket, int stop_fd) {
                     ssh::initialise_library();
                     return std::make_unique<Loop>(socket, stop_fd, settings);
                   }) {}

}  // namespace drunc::workers

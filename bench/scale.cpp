#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>

#include "broker.hpp"
#include "client.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"

extern char** environ;

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;

// This process's resident memory, in MiB.
double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

struct Figures {
  double boot, ps, terminate, memory;
};

Figures drunc_scale(int count) {
  const double memory_before = resident_mib();
  drunc::broker::Config config;
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  drunc::broker::Broker broker(config);
  drunc::client::Client client(broker.control_endpoint(), std::chrono::seconds(120));
  const auto start = Clock::now();
  boot_ready_processes(client, "app", "scale", {"localhost"}, count);
  Figures figures{};
  figures.boot = seconds_since(start);
  // Kill running processes, as at the end of a run.
  wait_until_each_is_ready(client, "app", count);
  figures.memory = resident_mib() - memory_before;
  const auto ps_start = Clock::now();
  if (client.ps().values_size() != count) throw std::runtime_error("ps did not list every process");
  figures.ps = seconds_since(ps_start);
  const auto terminate_start = Clock::now();
  client.terminate();
  figures.terminate = seconds_since(terminate_start);
  return figures;
}

// The machine's own cost: posix_spawn the same `sh -c` directly, then SIGKILL
// and reap them all.
Figures spawn_scale(int count) {
  std::vector<pid_t> pids;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    const char* argv[] = {"sh", "-c", "exec sleep 300", nullptr};
    pid_t pid;
    if (::posix_spawnp(&pid, "sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0)
      throw std::runtime_error("posix_spawn failed");
    pids.push_back(pid);
  }
  Figures figures{};
  figures.boot = seconds_since(start);
  const auto kill_start = Clock::now();
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
  figures.terminate = seconds_since(kill_start);
  return figures;
}

}  // namespace

void run_scale(int count, int repetitions, bool with_baseline) {
  std::vector<double> boot, terminate, memory, ps, spawn, reap;
  for (int r = 0; r < repetitions; ++r) {
    const auto ours = drunc_scale(count);
    const auto base = with_baseline ? spawn_scale(count) : Figures{};
    boot.push_back(ours.boot);
    terminate.push_back(ours.terminate);
    memory.push_back(ours.memory);
    ps.push_back(ours.ps * 1000);
    spawn.push_back(base.boot);
    reap.push_back(base.terminate);
  }
  const std::string n = std::to_string(count);
  if (!with_baseline) {
    const Stats b = stats_of(boot), t = stats_of(terminate);
    std::printf("| scale | boot %d local processes until all RUNNING | %.4g s (%.4g-%.4g) | - | - |\n", count, b.median,
                b.min, b.max);
    std::printf("| scale | terminate all %d | %.4g s (%.4g-%.4g) | - | - |\n", count, t.median, t.min, t.max);
    std::fflush(stdout);
    return;
  }
  print_row("scale", "boot " + n + " local processes until all RUNNING (baseline: posix_spawn them)", boot, spawn, "s",
            Better::smaller);
  print_row("scale", "terminate all " + n + " (baseline: SIGKILL and reap them)", terminate, reap, "s",
            Better::smaller);
  const Stats rss = stats_of(memory), listing = stats_of(ps);
  std::printf(
      "| scale | broker memory with %d processes and their log rings (RSS growth) | %.1f MiB (%.1f-%.1f) | - | - |\n",
      count, rss.median, rss.min, rss.max);
  std::printf("| scale | ps of all %d, one request | %.1f ms (%.1f-%.1f) | - | - |\n", count, listing.median,
              listing.min, listing.max);
  std::fflush(stdout);
}

}  // namespace bench

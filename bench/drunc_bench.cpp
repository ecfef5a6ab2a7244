// drunc-bench: named benchmark scenarios, each measured against a baseline in
// the same run. Prints one Markdown table row per measured quantity:
//   | scenario | quantity | drunc-zmq median (min-max) | baseline median (min-max) | ratio |
// bench/run.sh runs every scenario and writes docs/PERFORMANCE.md.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "broker.hpp"
#include "client.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"

extern char** environ;

namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;

using bench::seconds_since;

struct SshTarget {
  std::string state;  // the test sshd's state directory (tests/fixtures/sshd.sh)
  std::string user = "drunc-test";
  int port = 2222;
  std::vector<std::string> hosts;
};

drunc::broker::Config broker_config(const SshTarget& target) {
  drunc::broker::Config config;
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  config.ssh.default_user = target.user;
  config.ssh.default_port = target.port;
  config.ssh.key_files = {target.state + "/client_ed25519"};
  config.ssh.use_agent = false;
  config.ssh.known_hosts_files = {target.state + "/known_hosts"};
  config.ssh.host_key_policy = drunc::workers::HostKeyPolicy::strict;
  config.log_ring_lines = 100;
  return config;
}

// drunc-zmq: N pipelined boots spread over the hosts, until all are RUNNING;
// then one terminate, until all are DEAD. A fresh broker each time, so the
// connections are set up inside the measurement, as at the start of a run.
std::pair<double, double> drunc_boot_and_kill(const SshTarget& target, int count) {
  drunc::broker::Broker broker(broker_config(target));
  drunc::client::Client client(broker.control_endpoint(), std::chrono::seconds(120));
  const auto start = Clock::now();
  bench::boot_ready_processes(client, "bench", "", target.hosts, count);
  const double boot = seconds_since(start);
  // Kill processes that run, as at the end of a run.
  bench::wait_until_each_is_ready(client, "bench", count);
  const auto kill_start = Clock::now();
  const auto killed = client.terminate();
  const double kill = seconds_since(kill_start);
  if (killed.values_size() != count) throw std::runtime_error("terminate did not return every process");
  return {boot, kill};
}

// The Python implementation's method: one `ssh` client per process, started
// one after another, each waited for until the remote command runs, each
// holding its connection; kill: one after another, each with a fixed 0.5 s
// wait before SIGKILL.
std::pair<double, double> ssh_clients_boot_and_kill(const SshTarget& target, int count) {
  struct Client {
    pid_t pid;
    FILE* output;
  };
  std::vector<Client> clients;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const std::string key = target.state + "/client_ed25519";
    const std::string known = "UserKnownHostsFile=" + target.state + "/known_hosts";
    const std::string port = std::to_string(target.port);
    const std::string destination = target.user + "@" + target.hosts[i % target.hosts.size()];
    const char* argv[] = {"ssh", "-i", key.c_str(), "-o", known.c_str(), "-o", "StrictHostKeyChecking=yes",
                          "-o", "BatchMode=yes", "-p", port.c_str(), destination.c_str(),
                          "echo started; exec -a drunc-bench-baseline sleep 300", nullptr};
    pid_t pid;
    if (::posix_spawnp(&pid, "ssh", &actions, nullptr, const_cast<char* const*>(argv), environ) != 0)
      throw std::runtime_error("cannot start ssh");
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    FILE* output = ::fdopen(pipe_fds[0], "r");
    char line[64];
    if (!std::fgets(line, sizeof line, output)) throw std::runtime_error("ssh did not start the remote command");
    clients.push_back({pid, output});
  }
  const double boot = seconds_since(start);
  const auto kill_start = Clock::now();
  for (auto& client : clients) {
    ::kill(client.pid, SIGQUIT);
    ::usleep(500'000);  // the fixed wait of the method being measured
    if (::waitpid(client.pid, nullptr, WNOHANG) == 0) {
      ::kill(client.pid, SIGKILL);
      ::waitpid(client.pid, nullptr, 0);
    }
    std::fclose(client.output);
  }
  const double kill = seconds_since(kill_start);
  // Killing an ssh client does not end its remote command (a flaw of the
  // method measured): end them here, outside the measurement.
  if (std::system("pkill -KILL -f drunc-bench-baseline") < 0) std::cerr << "cannot run pkill\n";
  return {boot, kill};
}

void ssh_scenario(const std::string& name, const SshTarget& target, int count, int repetitions) {
  std::vector<double> boot, kill, baseline_boot, baseline_kill;
  for (int r = 0; r < repetitions; ++r) {
    auto [b, k] = drunc_boot_and_kill(target, count);
    boot.push_back(b);
    kill.push_back(k);
    auto [bb, bk] = ssh_clients_boot_and_kill(target, count);
    baseline_boot.push_back(bb);
    baseline_kill.push_back(bk);
    std::cerr << name << ": repetition " << r + 1 << "/" << repetitions << " done" << std::endl;
  }
  bench::print_row(name, "boot " + std::to_string(count) + " until all RUNNING", boot, baseline_boot, "s",
                   bench::Better::smaller);
  bench::print_row(name, "kill all " + std::to_string(count), kill, baseline_kill, "s", bench::Better::smaller);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drunc-bench: drunc-zmq benchmark scenarios, each with its baseline"};
  std::string scenario;
  std::string sshd_state = "/tmp/drunc-test-sshd";
  int count = 100;
  int repetitions = 5;
  std::vector<std::string> only;
  bool curve = false;
  long lines = 250000;
  int size = 100;
  int rate = 0;
  bench::SoakOptions soak;
  bench::FairnessOptions fairness;
  std::string broker_program;
  std::string broker_cpus;
  app.add_option("scenario", scenario,
                 "ssh-one-host | ssh-four-hosts | requests | scale | feed | soak | soak-ssh | fairness")
      ->required();
  app.add_option("--sshd-state", sshd_state, "state directory of tests/fixtures/sshd.sh")->capture_default_str();
  app.add_option("-n,--count", count, "processes")->capture_default_str();
  app.add_option("-r,--repetitions", repetitions, "repetitions (the median is reported)")->capture_default_str();
  app.add_option("--lines", lines, "feed: lines per process")->capture_default_str();
  app.add_option("--size", size, "feed: bytes per line, newline excluded (at least 24)")->capture_default_str();
  app.add_option("--rate", rate, "print: lines per second (0: as fast as it can)")->capture_default_str();
  app.add_option("--only", only, "requests: measure only the rows whose quantity contains this text (repeatable: any)");
  app.add_flag("--curve", curve,
               "requests, feed: with CURVE security on both sides (broker with security.mode \"curve\", "
               "CURVE echo or PUB), ps of one process / 1 subscriber only");
  app.add_option("--cycles", soak.cycles, "soak: local boot/kill cycles")->capture_default_str();
  app.add_option("--ssh-cycles", soak.ssh_cycles, "soak, soak-ssh: cycles over SSH (soak: 0 skips them)")
      ->capture_default_str();
  app.add_option("--concurrency", soak.concurrency, "soak: cycles in flight at once")->capture_default_str();
  app.add_option("--sample-every", soak.sample_every, "soak: cycles between samples (0: a twentieth of the run)")
      ->capture_default_str();
  app.add_option("--interval-us", fairness.interval_us, "fairness: pause between the paced client's requests")
      ->capture_default_str();
  app.add_option("--samples", fairness.samples, "fairness: paced requests measured per run")->capture_default_str();
  app.add_option("--broker", broker_program, "soak, fairness: drunc-broker to run (default: the build's own)");
  app.add_option("--broker-cpus", broker_cpus, "soak, fairness: run the broker under taskset -c LIST");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("drunc-bench"));  // stdout carries the table rows
  spdlog::set_level(std::getenv("DRUNC_BENCH_DEBUG") ? spdlog::level::info : spdlog::level::warn);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    SshTarget target;
    target.state = sshd_state;
    if (scenario == "requests") return bench::run_requests(repetitions, only, curve), 0;
    if (scenario == "feed") return bench::run_feed(count, lines, size, repetitions, curve), 0;
    if (scenario == "print") return bench::print_lines(lines, size, rate);
    if (scenario == "scale") return bench::run_scale(count, repetitions), 0;
    soak.broker = fairness.broker = broker_program;
    soak.broker_cpus = fairness.broker_cpus = broker_cpus;
    soak.sshd_state = sshd_state;
    if (scenario == "soak" || scenario == "soak-ssh") {
      // soak: the local cycles, then those over SSH (if --ssh-cycles > 0); soak-ssh: those over SSH only.
      bool flat = scenario == "soak-ssh" || bench::run_soak(soak);
      if (soak.ssh_cycles > 0) {
        soak.hosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
        flat = bench::run_soak(soak) && flat;
      }
      return flat ? 0 : 3;
    }
    if (scenario == "fairness") {
      fairness.repetitions = repetitions;
      return bench::run_fairness(fairness), 0;
    }
    if (scenario == "ssh-one-host") {
      target.hosts = {"127.0.0.2"};
    } else if (scenario == "ssh-four-hosts") {
      target.hosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
    } else {
      std::cerr << "unknown scenario " << scenario << "\n";
      return 2;
    }
    ssh_scenario(scenario, target, count, repetitions);
  } catch (const std::exception& error) {
    std::cerr << "drunc-bench: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

// drunc-bench: named benchmark scenarios, each measured against a baseline in
// the same run. Prints one Markdown table row per measured quantity:
//   | scenario | quantity | drunc-zmq median (min-max) | baseline median (min-max) | ratio |
// bench/run.sh runs every scenario and writes docs/PERFORMANCE.md.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "broker.hpp"
#include "client.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"
#include "ssh/ssh_settings.hpp"
#include "ssh_boot.hpp"

namespace {

drunc::broker::Config broker_config(const bench::SshTarget& target) {
  drunc::broker::Config config;
  config.control_endpoint = "tcp://127.0.0.1:*";
  config.events_endpoint = "tcp://127.0.0.1:*";
  auto& ssh = config.backends.get<drunc::workers::SshSettings>();
  ssh.default_user = target.user;
  ssh.default_port = target.port;
  ssh.key_files = {target.state + "/client_ed25519"};
  ssh.use_agent = false;
  ssh.known_hosts_files = {target.state + "/known_hosts"};
  ssh.host_key_policy = drunc::workers::HostKeyPolicy::strict;
  config.log_ring_lines = 100;
  return config;
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
  bench::SshBootOptions ssh;
  bool no_logs = false;
  bool scale_drunc_only = false;
  app.add_option("scenario", scenario,
                 "ssh-one-host | ssh-four-hosts | ssh-scale | requests | scale | feed | soak | soak-ssh | fairness")
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
  app.add_option("--methods", ssh.methods,
                 "ssh-*: methods to run, of drunc, sequential, parallel, control-master (default: all; ssh-scale: "
                 "drunc and control-master)");
  app.add_flag("--sequential-kill", ssh.sequential_kill,
               "ssh-one-host, ssh-four-hosts: also time the sequential method's kill (0.5 s per process)");
  app.add_option("--startups", ssh.startups, "ssh-*: ssh handshakes in flight at once (the sshd's MaxStartups)")
      ->capture_default_str();
  app.add_option("--sessions", ssh.sessions, "ssh-*: clients per ControlMaster connection (MaxSessions)")
      ->capture_default_str();
  app.add_option("--log-directory", ssh.log_directory, "ssh-*: the processes' log files (emptied each time)")
      ->capture_default_str();
  app.add_flag("--no-logs", no_logs, "ssh-*: no log files (the shell methods tee to /dev/null)");
  app.add_flag("--no-baseline", scale_drunc_only, "scale: drunc-zmq only (for process counts)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("drunc-bench"));  // stdout carries the table rows
  spdlog::set_level(std::getenv("DRUNC_BENCH_DEBUG") ? spdlog::level::info : spdlog::level::warn);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    bench::SshTarget target;
    target.state = sshd_state;
    if (scenario == "requests") return bench::run_requests(repetitions, only, curve), 0;
    if (scenario == "feed") return bench::run_feed(count, lines, size, repetitions, curve), 0;
    if (scenario == "print") return bench::print_lines(lines, size, rate);
    if (scenario == "scale") return bench::run_scale(count, repetitions, !scale_drunc_only), 0;
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
    } else if (scenario == "ssh-four-hosts" || scenario == "ssh-scale") {
      target.hosts = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
    } else {
      std::cerr << "unknown scenario " << scenario << "\n";
      return 2;
    }
    ssh.count = count;
    ssh.repetitions = repetitions;
    if (no_logs) ssh.log_directory.clear();
    if (scenario == "ssh-scale") {
      if (app.count("--methods") == 0) ssh.methods = {"drunc", "control-master"};
      bench::run_ssh_scale(target, ssh, broker_program);
    } else {
      bench::run_ssh_boot(scenario, target, broker_config(target), ssh);
    }
  } catch (const std::exception& error) {
    std::cerr << "drunc-bench: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

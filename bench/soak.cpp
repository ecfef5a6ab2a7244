// The soak (issue 11): many boot / wait-for-first-line / kill / flush cycles,
// `concurrency` of them in flight at once from one client, against drunc-broker
// run as a program of its own, so that /proc/PID shows its resident memory,
// open file descriptors, threads and unreaped children. Every `sample_every`
// cycles the client stops starting new ones, lets those in flight finish and
// waits until the broker has no child left; then it samples. Target: flat
// after warm-up (the first tenth of the cycles): RSS growth under 1 MiB, the
// same fds and threads, no zombie, no process left behind.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker_program.hpp"
#include "client.hpp"
#include "scenarios.hpp"
#include "sessions.hpp"

namespace bench {
namespace {

namespace pm = dunedaq::druncschema;
using Clock = std::chrono::steady_clock;
using drunc::wire::Command;

constexpr const char* kSession = "soak";
// The command each cycle runs; its command line marks what is left behind, here or on the SSH hosts.
constexpr const char* kCommand = "echo ready; exec sleep 86399";
constexpr const char* kLeftover = "sleep 86399";

struct Sample {
  long cycles;
  double seconds;
  ProcessSample broker;
  int leftovers;  // kLeftover processes on the machine (the SSH hosts are loopback addresses of it)
};

struct Totals {
  long completed = 0;
  long failed = 0;     // boot, kill or flush answered with an error, or no first line within 30 s
  long sigkilled = 0;  // kills that ended with SIGKILL (return code 137)
  std::map<int, long> return_codes;
  std::vector<double> cycle_ms;     // boot sent to flush answered
  std::vector<std::string> errors;  // the first few
};

class Soak {
 public:
  Soak(const std::string& control, const std::string& events, std::vector<std::string> hosts, int concurrency,
       Totals& totals)
      : client_(control, std::chrono::seconds(120)),
        feed_(events, {std::string("log/") + kSession + "/"}),
        hosts_(std::move(hosts)),
        slots_(static_cast<std::size_t>(concurrency)),
        totals_(totals) {
    if (!feed_.wait_until_live(client_, std::chrono::seconds(10)))
      throw std::runtime_error("the event feed did not come live");
  }

  // Runs cycles until `until` have been started and every one has ended.
  void run_until(long until) {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].state == State::idle && started_ < until) boot(i);
    while (busy() > 0) {
      if (auto reply = client_.receive(std::chrono::milliseconds(2))) {
        last_progress_ = Clock::now();
        on_reply(*reply, until);
      }
      while (auto event = feed_.next(std::chrono::milliseconds(0))) on_line(*event, until);
      check_stuck(until);
    }
  }

 private:
  enum class State { idle, booting, starting, killing, flushing };
  struct Slot {
    State state = State::idle;
    std::string uuid;
    Clock::time_point started, booted;
  };

  int busy() const {
    return static_cast<int>(
        std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.state != State::idle; }));
  }

  void note_error(const std::string& what) {
    ++totals_.failed;
    if (totals_.errors.size() < 5) totals_.errors.push_back(what);
  }

  void boot(std::size_t i) {
    pm::BootRequest request;
    auto* description = request.mutable_process_description();
    description->mutable_metadata()->set_name("soak-" + std::to_string(i));
    description->mutable_metadata()->set_session(kSession);
    auto* command = description->add_executable_and_arguments();
    command->set_exec("sh");
    command->add_args("-c");
    command->add_args(kCommand);
    request.mutable_process_restriction()->add_allowed_hosts(hosts_[i % hosts_.size()]);
    auto& slot = slots_[i];
    slot = Slot{State::booting, "", Clock::now(), {}};
    requests_[client_.send(Command::boot, &request)] = i;
    ++started_;
  }

  void send_for(std::size_t i, Command command, State next) {
    pm::ProcessQuery query;
    query.add_uuids()->set_uuid(slots_[i].uuid);
    slots_[i].state = next;
    requests_[client_.send(command, &query)] = i;
  }

  void end_cycle(std::size_t i, bool ok, long until) {
    auto& slot = slots_[i];
    if (ok) {
      ++totals_.completed;
      totals_.cycle_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - slot.started).count());
    }
    if (!slot.uuid.empty()) starting_.erase(slot.uuid);
    slot.state = State::idle;
    slot.uuid.clear();
    if (started_ < until) boot(i);
  }

  void on_reply(const drunc::client::Reply& reply, long until) {
    if (reply.more) return;
    const auto found = requests_.find(reply.request_id);
    if (found == requests_.end()) return;
    const std::size_t i = found->second;
    requests_.erase(found);
    auto& slot = slots_[i];
    pm::ProcessInstanceList list;
    const bool ok = reply.response.flag() == pm::EXECUTED_SUCCESSFULLY && reply.response.data().UnpackTo(&list);
    switch (slot.state) {
      case State::booting:
        if (!ok || list.values_size() != 1) {
          note_error("boot: " + drunc::client::response_text(reply.response));
          return end_cycle(i, false, until);
        }
        slot.uuid = list.values(0).uuid().uuid();
        slot.booted = Clock::now();
        if (ready_.erase(slot.uuid))  // its first line came before the answer
          return send_for(i, Command::kill, State::killing);
        slot.state = State::starting;
        starting_[slot.uuid] = i;
        return;
      case State::killing:
        if (!ok || list.values_size() != 1 || list.values(0).status_code() != pm::ProcessInstance::DEAD) {
          note_error("kill: " + drunc::client::response_text(reply.response));
          return send_for(i, Command::flush, State::flushing);
        }
        ++totals_.return_codes[list.values(0).return_code()];
        if (list.values(0).return_code() == 137) ++totals_.sigkilled;
        return send_for(i, Command::flush, State::flushing);
      case State::flushing:
        if (!ok || list.values_size() != 1) {
          note_error("flush: " + drunc::client::response_text(reply.response));
          return end_cycle(i, false, until);
        }
        return end_cycle(i, true, until);
      default: return;
    }
  }

  void on_line(const drunc::client::Event& event, long) {
    pm::LogLine line;
    if (!line.ParseFromString(event.payload) || line.line() != "ready") return;
    const auto found = starting_.find(line.uuid().uuid());
    if (found == starting_.end()) {
      ready_.insert(line.uuid().uuid());  // the boot's answer is still on its way
      return;
    }
    const std::size_t i = found->second;
    starting_.erase(found);
    send_for(i, Command::kill, State::killing);
  }

  // A process whose first line never came (lost, or it died before printing) is killed anyway.
  void check_stuck(long) {
    const auto now = Clock::now();
    if (now - last_check_ < std::chrono::seconds(1)) return;
    last_check_ = now;
    if (now - last_progress_ > std::chrono::seconds(120))
      throw std::runtime_error("no answer from the broker for 120 s with " + std::to_string(busy()) +
                               " cycles in flight");
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].state != State::starting || now - slots_[i].booted < std::chrono::seconds(30)) continue;
      note_error("no first line within 30 s from " + slots_[i].uuid);
      starting_.erase(slots_[i].uuid);
      send_for(i, Command::kill, State::killing);
    }
  }

  drunc::client::Client client_;
  drunc::client::Subscriber feed_;
  std::vector<std::string> hosts_;
  std::vector<Slot> slots_;
  Totals& totals_;
  long started_ = 0;
  std::unordered_map<std::string, std::size_t> requests_;  // request id -> slot
  std::unordered_map<std::string, std::size_t> starting_;  // uuid -> slot, booted, first line awaited
  std::unordered_set<std::string> ready_;                  // first line seen before the boot's answer
  Clock::time_point last_check_ = Clock::now();
  Clock::time_point last_progress_ = Clock::now();  // the last answer
};

// Once nothing is in flight: waits (up to 10 s) until the broker has no child
// and nothing is left running, then samples.
Sample quiet_sample(pid_t broker, long cycles, Clock::time_point start) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto sample = sample_process(broker);
    const int leftovers = count_processes_with_command_line(kLeftover);
    if ((sample.children == 0 && sample.zombies == 0 && leftovers == 0) || Clock::now() > deadline)
      return {cycles, seconds_since(start), sample, leftovers};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(fraction * values.size()))];
}

long file_size(const std::string& path) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  return file ? static_cast<long>(file.tellg()) : 0;
}

// Lines of `path` from byte `from` on that contain `text`.
long count_lines_containing(const std::string& path, long from, const std::string& text) {
  std::ifstream file(path, std::ios::binary);
  file.seekg(from);
  long count = 0;
  for (std::string line; std::getline(file, line);)
    if (line.find(text) != std::string::npos) ++count;
  return count;
}

std::string with_commas(long n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

bool run_soak(const SoakOptions& options) {
  const bool ssh = !options.hosts.empty();
  const long cycles = ssh ? options.ssh_cycles : options.cycles;
  const std::string name = ssh ? "soak over SSH" : "soak local";
  if (cycles <= 0) return true;
  std::string settings = "\"log_ring_lines\": 100";
  std::vector<std::string> hosts = options.hosts;
  if (ssh) {
    const std::string& state = options.sshd_state;
    settings += ",\n  \"ssh\": {\"user\": \"drunc-test\", \"port\": 2222, \"key_files\": [\"" + state +
                "/client_ed25519\"], \"use_agent\": false, \"known_hosts_files\": [\"" + state +
                "/known_hosts\"], \"host_key_policy\": \"strict\"}";
  } else {
    hosts = {"localhost"};
  }
  const long sample_every = std::max(1L, options.sample_every > 0 ? options.sample_every : cycles / 20);
  const long warmup = std::max(sample_every, (cycles / 10 / sample_every) * sample_every);
  const double load_before = load_average();
  // The test sshd logs "no more sessions" when it refuses a channel because
  // the connection has MaxSessions open (as it counts them).
  const std::string sshd_log = options.sshd_state + "/sshd.log";
  const long sshd_log_start = ssh ? file_size(sshd_log) : 0;

  BrokerProgram broker(broker_program_path(options.broker), settings, options.broker_cpus);
  Totals totals;
  std::vector<Sample> samples;
  const auto start = Clock::now();
  samples.push_back(quiet_sample(broker.pid(), 0, start));
  {
    Soak soak(broker.control_endpoint(), broker.events_endpoint(), hosts, options.concurrency, totals);
    for (long done = 0; done < cycles;) {
      done = std::min(cycles, done + sample_every);
      soak.run_until(done);
      samples.push_back(quiet_sample(broker.pid(), done, start));
      const auto& s = samples.back();
      std::cerr << name << ": " << done << " cycles, " << s.seconds << " s: RSS " << s.broker.rss_kib << " KiB, fds "
                << s.broker.fds << ", threads " << s.broker.threads << ", zombies " << s.broker.zombies << ", children "
                << s.broker.children << ", left " << s.leftovers << ", failed " << totals.failed << std::endl;
    }
  }
  const double seconds = seconds_since(start);
  const int exit_status = broker.stop();
  const double load_after = load_average();

  const auto warm = *std::find_if(samples.begin(), samples.end(), [&](const Sample& s) { return s.cycles >= warmup; });
  const auto& first = samples.front();
  const auto& last = samples.back();
  double rss_max_after_warmup = 0;
  int zombies_max = 0, children_max = 0, leftovers_max = 0, fds_min = 1 << 30, fds_max = 0, threads_min = 1 << 30,
      threads_max = 0;
  for (const auto& s : samples) {
    zombies_max = std::max(zombies_max, s.broker.zombies);
    children_max = std::max(children_max, s.broker.children);
    leftovers_max = std::max(leftovers_max, s.leftovers);
    if (s.cycles < warm.cycles) continue;
    rss_max_after_warmup = std::max(rss_max_after_warmup, s.broker.rss_kib);
    fds_min = std::min(fds_min, s.broker.fds);
    fds_max = std::max(fds_max, s.broker.fds);
    threads_min = std::min(threads_min, s.broker.threads);
    threads_max = std::max(threads_max, s.broker.threads);
  }
  const double growth_mib = (last.broker.rss_kib - warm.broker.rss_kib) / 1024.0;
  const bool rss_ok = growth_mib < 1.0;
  const bool fds_ok = fds_min == fds_max;
  const bool threads_ok = threads_min == threads_max;
  const bool zombies_ok = zombies_max == 0 && children_max == 0;
  const bool leftovers_ok = leftovers_max == 0;
  const bool cycles_ok = totals.completed == cycles && totals.failed == 0;
  auto verdict = [](bool ok) { return ok ? "pass" : "**FAIL**"; };
  const std::string at_warm = "after warm-up (" + with_commas(warm.cycles) + ")";
  const std::string head = "| " + name + " | ";

  // | run | quantity | at start | after warm-up | at end | growth after warm-up | target | result |
  std::printf(
      "%sbroker RSS (VmRSS) | %.2f MiB | %.2f MiB | %.2f MiB | %+.2f MiB (highest after warm-up %.2f MiB) | < 1 MiB | "
      "%s |\n",
      head.c_str(), first.broker.rss_kib / 1024, warm.broker.rss_kib / 1024, last.broker.rss_kib / 1024, growth_mib,
      rss_max_after_warmup / 1024, verdict(rss_ok));
  std::printf("%sbroker open fds | %d | %d | %d | %+d (%d-%d after warm-up) | constant | %s |\n", head.c_str(),
              first.broker.fds, warm.broker.fds, last.broker.fds, last.broker.fds - warm.broker.fds, fds_min, fds_max,
              verdict(fds_ok));
  std::printf("%sbroker threads | %d | %d | %d | %+d (%d-%d after warm-up) | constant | %s |\n", head.c_str(),
              first.broker.threads, warm.broker.threads, last.broker.threads, last.broker.threads - warm.broker.threads,
              threads_min, threads_max, verdict(threads_ok));
  std::printf(
      "%sbroker zombie / live children, once idle | %d / %d | %d / %d | %d / %d | highest %d / %d | 0 / 0 | %s |\n",
      head.c_str(), first.broker.zombies, first.broker.children, warm.broker.zombies, warm.broker.children,
      last.broker.zombies, last.broker.children, zombies_max, children_max, verdict(zombies_ok));
  std::printf("%sprocesses left running (`%s`%s), once idle | %d | %d | %d | highest %d | 0 | %s |\n", head.c_str(),
              kLeftover, ssh ? ", on the SSH hosts too" : "", first.leftovers, warm.leftovers, last.leftovers,
              leftovers_max, verdict(leftovers_ok));
  std::printf("%scycles completed (failed) | - | %s | %s (%ld) | - | %s (0) | %s |\n", head.c_str(),
              with_commas(warm.cycles).c_str(), with_commas(totals.completed).c_str(), totals.failed,
              with_commas(cycles).c_str(), verdict(cycles_ok));
  std::ostringstream codes;
  for (const auto& [code, count] : totals.return_codes)
    codes << (codes.tellp() > 0 ? ", " : "") << code << ": " << count;
  std::printf(
      "%scycle time (boot to flush answered), %d in flight | - | - | p50 %.0f ms, p99 %.0f ms | - | - | %.0f cycles/s "
      "over %.0f s |\n",
      head.c_str(), options.concurrency, percentile(totals.cycle_ms, 0.5), percentile(totals.cycle_ms, 0.99),
      static_cast<double>(totals.completed) / seconds, seconds);
  std::printf("%sreturn codes of the killed (SIGKILLed) | - | - | %s (%ld) | - | - | - |\n", head.c_str(),
              codes.str().c_str(), totals.sigkilled);
  std::string hosts_text;
  for (const auto& host : hosts) hosts_text += (hosts_text.empty() ? "" : ", ") + host;
  std::ostringstream series;
  for (const auto& s : samples)
    series << (s.cycles == 0 ? "" : ", ") << std::fixed << std::setprecision(2) << s.broker.rss_kib / 1024;
  std::printf("note: %s: broker RSS every %s cycles, MiB (the first at start): %s\n", name.c_str(),
              with_commas(sample_every).c_str(), series.str().c_str());
  std::printf(
      "note: %s: %s cycles, %d in flight, hosts %s; load average (1 min) %.2f at start, %.2f at end; "
      "broker exit status %d\n",
      name.c_str(), with_commas(cycles).c_str(), options.concurrency, hosts_text.c_str(), load_before, load_after,
      exit_status);
  if (ssh)
    std::printf(
        "note: %s: the test sshd refused %ld session channels during the run (\"no more sessions\" in %s: "
        "MaxSessions 10 reached on a connection as sshd counts them)\n",
        name.c_str(), count_lines_containing(sshd_log, sshd_log_start, "no more sessions"), sshd_log.c_str());
  std::fflush(stdout);
  for (const auto& error : totals.errors) std::cerr << name << ": " << error << "\n";
  return rss_ok && fds_ok && threads_ok && zombies_ok && leftovers_ok && cycles_ok;
}

}  // namespace bench

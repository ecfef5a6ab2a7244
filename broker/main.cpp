// drunc-broker: parses options and configuration, runs a Broker until SIGINT
// or SIGTERM, then lets it kill its processes and exit 0. SIGHUP re-reads the
// admitted client certificates (and logs which other settings of the file
// changed: those need a restart). If the broker stops on an error, the program
// kills its processes and exits 1. Under systemd (Type=notify) it says READY=1
// once serving and STOPPING=1 when it stops.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "broker.hpp"
#include "config.hpp"
#include "drunc_version.hpp"

namespace {

// --log-format json: one JSON object per line, {"time": "2026-12-02T15:44:53.123456+01:00",
// "level": "info", "message": "..."}, for log collectors. The broker's messages
// are text only, so there are no other fields.
class JsonLogFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count() % 1000000;
    std::tm local{};
    ::localtime_r(&seconds, &local);
    char date[32], zone[8], time_text[64];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
    std::strftime(zone, sizeof zone, "%z", &local);  // +0100; RFC 3339 wants +01:00
    std::snprintf(time_text, sizeof time_text, "%s.%06lld%.3s:%.2s", date, static_cast<long long>(micros), zone,
                  zone + 3);
    const auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::ordered_json line = {{"time", time_text},
                                   {"level", std::string(level.data(), level.size())},
                                   {"message", std::string(msg.payload.data(), msg.payload.size())}};
    // Process output may be any bytes: invalid UTF-8 becomes U+FFFD, not an exception.
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLogFormatter>(); }
};

// SIGHUP reloads only the client certificates (Broker::reload logs what); the
// rest is fixed at start, so name every setting the file now changes.
void log_settings_needing_restart(const std::string& config_path, const nlohmann::json& started_with) {
  if (config_path.empty()) return;  // the built-in configuration cannot change
  try {
    std::ifstream file(config_path);
    std::stringstream text;
    text << file.rdbuf();
    if (!file) throw std::runtime_error("cannot read the file");
    drunc::broker::parse_config(text.str(), config_path);  // a restart would refuse an invalid file
    const auto now = nlohmann::json::parse(text.str(), nullptr, true, /*ignore_comments=*/true);
    std::size_t changed = 0;
    for (const auto& operation : nlohmann::json::diff(started_with, now)) {
      ++changed;
      const auto op = operation["op"].get<std::string>();
      auto setting = operation["path"].get<std::string>().substr(1);  // JSON pointer "/ssh/user" -> "ssh.user"
      std::replace(setting.begin(), setting.end(), '/', '.');
      spdlog::warn("SIGHUP: setting {} {} in {}: needs a restart to take effect", setting,
                   op == "add"      ? "added"
                   : op == "remove" ? "removed"
                                    : "changed",
                   config_path);
    }
    if (changed == 0) spdlog::info("SIGHUP: {} is as at start: nothing needs a restart", config_path);
  } catch (const std::exception& error) {
    spdlog::error("SIGHUP: {} no longer loads, a restart would fail: {}", config_path, error.what());
  }
}

nlohmann::json read_config_json(const std::string& config_path) {
  if (config_path.empty()) return nullptr;
  std::ifstream file(config_path);
  return nlohmann::json::parse(file, nullptr, true, /*ignore_comments=*/true);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drunc-broker: the drunc process manager over ZeroMQ"};
  app.set_version_flag("--version", std::string(drunc::kVersionText));
  std::string config_path;
  std::string log_level;
  std::string log_format = "text";
  bool print_default = false;
  app.add_option("-c,--config", config_path, "JSON configuration file (default: the built-in config/broker.json)");
  app.add_option("-l,--log-level", log_level,
                 "trace, debug, info, warn, error, critical or off (overrides the config)");
  app.add_option("--log-format", log_format, "text (the default) or json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--print-default-config", print_default, "print the built-in configuration and exit");
  CLI11_PARSE(app, argc, argv);

  if (print_default) {
    std::cout << drunc::broker::default_config_json();
    return 0;
  }

  // Block the stop signals in every thread (threads inherit the mask); this
  // thread waits for them below. Children get a clean mask from posix_spawn.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  sigaddset(&stop_signals, SIGUSR1);  // the broker thread failed (see below)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    auto config = config_path.empty() ? drunc::broker::default_config() : drunc::broker::load_config_file(config_path);
    if (!log_level.empty()) {
      if (spdlog::level::from_str(log_level) == spdlog::level::off && log_level != "off")
        throw drunc::broker::ConfigError("--log-level " + log_level +
                                         ": expected trace, debug, info, warn, error, critical or off");
      config.log_level = log_level;
    }
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    if (log_format == "json") spdlog::set_formatter(std::make_unique<JsonLogFormatter>());
    const auto started_with = read_config_json(config_path);
    // A failed broker thread wakes this one, which destroys the broker (killing
    // every process it started) and exits non-zero, so that a supervisor notices.
    drunc::broker::Broker broker(std::move(config), [](const std::string&) { ::kill(::getpid(), SIGUSR1); });
    sd_notifyf(0, "READY=1\nSTATUS=serving on %s, events on %s", broker.control_endpoint().c_str(),
               broker.events_endpoint().c_str());
    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
      broker.reload();
      log_settings_needing_restart(config_path, started_with);
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: killing its processes");
    if (signal_number == SIGUSR1) {
      std::cerr << "drunc-broker: the broker stopped on an error (see the log); its processes are killed\n";
      return 1;
    }
    spdlog::info("received {}, stopping", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  } catch (const drunc::broker::ConfigError& error) {
    std::cerr << "drunc-broker: configuration error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "drunc-broker: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

// drunc-broker: parses options and configuration, runs a Broker until SIGINT
// or SIGTERM, then lets it kill its processes and exit 0. SIGHUP re-reads the
// admitted client certificates. If the broker stops on an error, the program
// kills its processes and exits 1.
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "broker.hpp"
#include "config.hpp"
#include "drunc_version.hpp"

int main(int argc, char** argv) {
  CLI::App app{"drunc-broker: the drunc process manager over ZeroMQ"};
  app.set_version_flag("--version", std::string(drunc::kVersionText));
  std::string config_path;
  std::string log_level;
  bool print_default = false;
  app.add_option("-c,--config", config_path, "JSON configuration file (default: the built-in config/broker.json)");
  app.add_option("-l,--log-level", log_level, "trace, debug, info, warn, error, critical or off (overrides the config)");
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
    // A failed broker thread wakes this one, which destroys the broker (killing
    // every process it started) and exits non-zero, so that a supervisor notices.
    drunc::broker::Broker broker(std::move(config), [](const std::string&) { ::kill(::getpid(), SIGUSR1); });
    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) broker.reload();
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

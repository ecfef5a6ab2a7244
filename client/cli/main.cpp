// drunc-pm: the command-line client of drunc-zmq (docs/CLI.md).
// Exit status: 0 success, 1 the broker answered an error flag (or a boot of a
// session file partly failed), 2 bad usage or input file, 3 no answer in time.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "client.hpp"
#include "wire/certificate.hpp"
#include "output.hpp"
#include "session_file.hpp"
#include "drunc_version.hpp"
#include "logs.hpp"
#include "watch.hpp"

namespace pm = dunedaq::druncschema;
using drunc::wire::Command;

namespace {

struct QueryOptions {
  std::string session;
  std::vector<std::string> names;
  std::string user;
  std::vector<std::string> uuids;

  void add_to(CLI::App* command) {
    command->add_option("-s,--session", session, "processes of this session");
    command->add_option("-n,--name", names, "friendly-name regular expression (repeatable)");
    command->add_option("-u,--user", user, "processes of this user");
    command->add_option("--uuid", uuids, "process uuid (repeatable)");
  }

  pm::ProcessQuery query() const {
    pm::ProcessQuery query;
    for (const auto& uuid : uuids) query.add_uuids()->set_uuid(uuid);
    for (const auto& name : names) query.add_names(name);
    query.set_user(user);
    query.set_session(session);
    return query;
  }
};

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return "unknown";
}

struct Options {
  std::string broker = "tcp://127.0.0.1:5555";
  double timeout_s = 10;
  bool json = false;
  std::string certificate;  // the client's secret certificate
  std::string server_key;   // the broker's public certificate or key
};

// keygen: a certificate pair in the zmq.auth format, NAME.key and NAME.key_secret.
int keygen(std::string name, const std::string& user, const std::string& role, const std::string& sessions) {
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".key") == 0) name.resize(name.size() - 4);
  std::map<std::string, std::string> metadata;
  const auto slash = name.rfind('/');
  metadata["user"] = user.empty() ? name.substr(slash == std::string::npos ? 0 : slash + 1) : user;
  if (!role.empty()) metadata["role"] = role;
  if (!sessions.empty()) metadata["sessions"] = sessions;
  for (const auto& [key, value] : metadata)
    for (unsigned char c : value)
      if (c < 0x20 || c == '"' || c == 0x7f)
        throw CLI::ValidationError("keygen", key + " must not hold quotes or control characters");
  const auto certificate = drunc::wire::generate_certificate(metadata);
  drunc::wire::write_certificate_pair(certificate, name + ".key");
  std::cout << "public certificate: " << name << ".key (give it to the broker's security.client_certificates "
            << "directory, or to clients as --server-key)\nsecret certificate: " << name
            << ".key_secret (mode 0600: keep it to yourself; --certificate)\npublic key: " << certificate.public_key
            << "\n";
  return 0;
}

void print_list(const pm::ProcessInstanceList& list, const Options& options, bool long_format) {
  if (options.json)
    std::cout << drunc::cli::to_json(list) << "\n";
  else
    drunc::cli::print_process_table(list, long_format, std::cout);
}

// Pipelined boot of many processes: every request is sent before the first
// answer is awaited; a progress line is kept up to date on a terminal.
int boot_many(drunc::client::Client& client, const std::vector<pm::BootRequest>& requests, const Options& options) {
  std::unordered_map<std::string, std::size_t> index_of_request;
  for (std::size_t i = 0; i < requests.size(); ++i) index_of_request[client.send(Command::boot, &requests[i])] = i;

  const bool progress = ::isatty(STDERR_FILENO) && !options.json;
  pm::ProcessInstanceList booted;
  std::vector<std::string> failures;
  std::size_t answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + client.timeout();
  while (answered < requests.size()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto reply = left.count() > 0 ? client.receive(left) : std::nullopt;
    if (!reply) {
      if (progress) std::cerr << "\n";
      std::cerr << "drunc-pm: boot: " << requests.size() - answered << " of " << requests.size()
                << " boots not answered in time by " << options.broker << "\n";
      return 3;
    }
    auto found = index_of_request.find(reply->request_id);
    if (found == index_of_request.end() || reply->more) continue;
    ++answered;
    const auto& name = requests[found->second].process_description().metadata().name();
    pm::ProcessInstanceList list;
    if (reply->response.flag() == pm::EXECUTED_SUCCESSFULLY && reply->response.data().UnpackTo(&list)) {
      for (const auto& instance : list.values()) *booted.add_values() = instance;
    } else {
      failures.push_back(name + ": " + pm::ResponseFlag_Name(reply->response.flag()) + ": " +
                         drunc::client::response_text(reply->response));
    }
    if (progress)
      std::cerr << "\rbooting: " << answered << "/" << requests.size() << " answered, " << failures.size()
                << " failed" << std::flush;
  }
  if (progress) std::cerr << "\n";
  print_list(booted, options, false);
  for (const auto& failure : failures) std::cerr << "drunc-pm: boot failed: " << failure << "\n";
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drunc-pm: command-line client of the drunc-zmq process manager"};
  app.set_version_flag("--version", std::string(drunc::kVersionText));
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  Options options;
  if (const char* broker = std::getenv("DRUNC_PM_BROKER"); broker && *broker) options.broker = broker;
  app.add_option("-b,--broker", options.broker, "control endpoint of the broker (env DRUNC_PM_BROKER)")->capture_default_str();
  app.add_option("-t,--timeout", options.timeout_s, "seconds to wait for an answer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--json", options.json, "print answers as JSON, one document per line");
  if (const char* value = std::getenv("DRUNC_CERTIFICATE")) options.certificate = value;
  if (const char* value = std::getenv("DRUNC_SERVER_KEY")) options.server_key = value;
  app.add_option("--certificate", options.certificate,
                 "this client's secret CURVE certificate, for a broker with security.mode \"curve\" "
                 "(env DRUNC_CERTIFICATE)");
  app.add_option("--server-key", options.server_key,
                 "the broker's public certificate file, or its public key in Z85 (env DRUNC_SERVER_KEY)");

  auto* keygen_command = app.add_subcommand("keygen", "write a CURVE certificate pair: NAME.key and NAME.key_secret");
  std::string keygen_name, keygen_user, keygen_role, keygen_sessions;
  keygen_command->add_option("NAME", keygen_name, "file name, without .key (a path may lead to it)")->required();
  keygen_command->add_option("--user", keygen_user, "the user this key stands for (default: NAME's last part)");
  keygen_command->add_option("--role", keygen_role, "observer, operator or admin (clients; none for a broker's key)")
      ->check(CLI::IsMember({"observer", "operator", "admin"}));
  keygen_command->add_option("--sessions", keygen_sessions,
                             "the sessions an operator may act on, comma-separated, or * (default: *)");

  auto* describe = app.add_subcommand("describe", "describe the process manager and its commands");

  auto* boot = app.add_subcommand("boot", "boot one process from flags, or many from a session file");
  std::string session_file, boot_name, boot_session, boot_user = current_user(), boot_dir, boot_log;
  std::vector<std::string> boot_hosts, boot_env, boot_command;
  boot->add_option("-f,--file", session_file, "JSON session file (see config/demo-session.json)");
  boot->add_option("-n,--name", boot_name, "friendly name of the process");
  boot->add_option("-s,--session", boot_session, "session of the process");
  boot->add_option("-u,--user", boot_user, "user of the process")->capture_default_str();
  boot->add_option("-H,--host", boot_hosts, "allowed host, tried in order (repeatable; default localhost)");
  boot->add_option("-d,--directory", boot_dir, "execution directory");
  boot->add_option("-l,--log", boot_log, "log file the output is appended to");
  boot->add_option("-e,--env", boot_env, "environment variable NAME=VALUE (repeatable)");
  boot->footer("The command follows --, e.g.: drunc-pm boot -n app -- my-exe --its-option value");

  QueryOptions ps_query, kill_query, flush_query, restart_query, logs_query;
  auto* ps = app.add_subcommand("ps", "list processes");
  ps_query.add_to(ps);
  bool long_format = false;
  ps->add_flag("-l,--long-format", long_format, "also show directory, log path and command");
  auto* kill = app.add_subcommand("kill", "kill the matching processes");
  kill_query.add_to(kill);
  auto* flush = app.add_subcommand("flush", "forget the matching dead processes");
  flush_query.add_to(flush);
  auto* restart = app.add_subcommand("restart", "restart exactly one process");
  restart_query.add_to(restart);
  auto* terminate = app.add_subcommand("terminate", "kill every process");
  auto* logs = app.add_subcommand("logs", "print the last lines of one process's output");
  logs_query.add_to(logs);
  drunc::cli::LogsOptions logs_options;
  logs->add_option("--how-far", logs_options.how_far, "number of lines")->capture_default_str();
  logs->add_option("--grep", logs_options.grep, "only the lines matching this regular expression");
  logs->add_flag("-f,--follow", logs_options.follow, "then print new lines as they come, until the process ends");

  auto* watch = app.add_subcommand("watch", "print the live feed of log lines, state changes and broadcasts");
  drunc::cli::WatchOptions watch_options;
  watch->add_option("-s,--session", watch_options.session, "only this session");
  watch->add_option("-n,--name", watch_options.name, "only the process with exactly this friendly name");
  watch->add_flag("--logs", watch_options.logs, "log lines");
  watch->add_flag("--states", watch_options.states, "state changes");
  watch->add_flag("--broadcasts", watch_options.broadcasts, "drunc broadcasts (default: all three kinds)");

  // Everything after the first "--" is the command to boot, verbatim: its own
  // options must not be read as drunc-pm's, so it never reaches the parser.
  int parsed_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      boot_command.assign(argv + i + 1, argv + argc);
      parsed_argc = i;
      break;
    }
  }
  try {
    app.parse(parsed_argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);  // prints help or the error
    return status == 0 ? 0 : 2;
  }

  try {
    if (*keygen_command) return keygen(keygen_name, keygen_user, keygen_role, keygen_sessions);
    // A session file may name the keys too; options and environment come first.
    if (*boot && !session_file.empty() && options.certificate.empty() && options.server_key.empty()) {
      const auto keys = drunc::cli::session_file_keys(session_file);
      options.certificate = keys.certificate;
      options.server_key = keys.server_key;
    }
    auto keys = drunc::client::load_curve_keys(options.certificate, options.server_key);
    // With a certificate the broker knows who we are; a token naming another user would be refused.
    pm::Token token;
    token.set_user_name(keys.enabled() ? keys.user : current_user());
    drunc::client::Client client(options.broker,
                                 std::chrono::milliseconds(static_cast<long>(options.timeout_s * 1000)),
                                 std::move(keys));
    client.set_token(token);

    if (*describe) {
      const auto description = client.describe();
      if (options.json) {
        std::cout << drunc::cli::to_json(description) << "\n";
        return 0;
      }
      std::cout << "name: " << description.name() << "\ntype: " << description.type()
                << "\nsession: " << description.session() << "\n";
      drunc_zmq::EventFeed feed;
      if (description.broadcast().UnpackTo(&feed)) {
        std::cout << "events: " << feed.address() << " (" << feed.protocol() << "), "
                  << feed.events_dropped() << " refused to slow subscribers since start\n";
        std::cout << "security: " << (feed.security_mode().empty() ? "unknown" : feed.security_mode())
                  << (feed.insecure_network_allowed()
                          ? " -- INSECURE: reachable from the network with no authentication "
                            "(security.allow_insecure_network)"
                          : "")
                  << "\n";
      }
      std::vector<std::vector<std::string>> rows = {{"command", "data type", "return type", "help"}};
      for (const auto& command : description.commands())
        rows.push_back({command.name(), command.data_type_size() ? command.data_type(0) : "",
                        command.return_type(), command.help()});
      std::cout << "\n";
      drunc::cli::print_aligned(rows, std::cout);
    } else if (*boot) {
      if (!session_file.empty()) {
        if (!boot_command.empty() || !boot_name.empty())
          throw CLI::ValidationError("boot", "--file cannot be combined with --name or a command");
        return boot_many(client, drunc::cli::load_session_file(session_file, boot_user), options);
      }
      if (boot_name.empty() || boot_command.empty())
        throw CLI::ValidationError("boot", "give --name and a command after --, or --file");
      pm::BootRequest request;
      auto* description = request.mutable_process_description();
      auto* metadata = description->mutable_metadata();
      metadata->set_name(boot_name);
      metadata->set_user(boot_user);
      if (!boot_session.empty()) metadata->set_session(boot_session);
      auto* exec = description->add_executable_and_arguments();
      exec->set_exec(boot_command[0]);
      for (std::size_t i = 1; i < boot_command.size(); ++i) exec->add_args(boot_command[i]);
      for (const auto& assignment : boot_env) {
        const auto equals = assignment.find('=');
        if (equals == std::string::npos || equals == 0)
          throw CLI::ValidationError("--env", "expected NAME=VALUE, got \"" + assignment + "\"");
        (*description->mutable_env())[assignment.substr(0, equals)] = assignment.substr(equals + 1);
      }
      description->set_process_execution_directory(boot_dir);
      description->set_process_logs_path(boot_log);
      if (boot_hosts.empty()) boot_hosts.push_back("localhost");
      for (const auto& host : boot_hosts) request.mutable_process_restriction()->add_allowed_hosts(host);
      print_list(client.boot(request), options, false);
    } else if (*ps) {
      print_list(client.ps(ps_query.query()), options, long_format);
    } else if (*kill) {
      print_list(client.kill(kill_query.query()), options, false);
    } else if (*flush) {
      print_list(client.flush(flush_query.query()), options, false);
    } else if (*restart) {
      print_list(client.restart(restart_query.query()), options, false);
    } else if (*terminate) {
      print_list(client.terminate(), options, false);
    } else if (*watch) {
      drunc_zmq::EventFeed feed;
      if (!client.describe().broadcast().UnpackTo(&feed))
        throw std::runtime_error("the broker does not say where its event feed is");
      watch_options.json = options.json;
      watch_options.keys = client.curve_keys();
      return drunc::cli::watch(feed.address(), watch_options);
    } else if (*logs) {
      logs_options.query = logs_query.query();
      logs_options.json = options.json;
      return drunc::cli::print_logs(client, logs_options);
    }
  } catch (const CLI::Error& error) {
    app.exit(error);
    return 2;
  } catch (const drunc::cli::SessionFileError& error) {
    std::cerr << "drunc-pm: " << error.what() << "\n";
    return 2;
  } catch (const drunc::client::ResponseError& error) {
    std::cerr << "drunc-pm: " << app.get_subcommands().front()->get_name() << " failed: " << error.what() << "\n";
    return 1;
  } catch (const drunc::client::HandshakeError& error) {
    std::cerr << "drunc-pm: " << error.what() << "\n";
    return 1;
  } catch (const drunc::client::TimeoutError& error) {
    std::cerr << "drunc-pm: no answer from " << options.broker << " within " << options.timeout_s
              << " s: is drunc-broker running there?\n";
    return 3;
  } catch (const std::exception& error) {
    std::cerr << "drunc-pm: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

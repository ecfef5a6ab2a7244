// drunc-pm: the command-line client of drunc-zmq (docs/CLI.md).
// Exit status: 0 success; 1 the broker answered an error flag, a boot of a
// session file partly failed, or drunc-pm refused a boot up front; 2 bad
// usage or input file; 3 the broker could not be reached or did not answer
// in time; 4 the selection matched no process (or several where one is needed).
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "boot_checks.hpp"
#include "client.hpp"
#include "drunc_version.hpp"
#include "endpoint.hpp"
#include "logs.hpp"
#include "output.hpp"
#include "selection.hpp"
#include "session_file.hpp"
#include "watch.hpp"
#include "wire/certificate.hpp"

namespace pm = dunedaq::druncschema;
using drunc::wire::Command;

namespace {

constexpr const char* kSelectionFooter =
    "The options narrow: a process is selected when it matches every option given (-s AND -u AND any one "
    "of the -n AND any one of the --uuid). -n is a regular expression searched in the friendly name "
    "(anchor it, '^readout-01$', for an exact name).";

void add_selection_options(CLI::App* command, drunc::cli::Selection& selection) {
  command->add_option("-s,--session", selection.session, "processes of this session");
  command->add_option("-n,--name", selection.names, "friendly-name regular expression (repeatable: any of them)");
  command->add_option("-u,--user", selection.user, "processes of this user");
  command->add_option("--uuid", selection.uuids, "process uuid (repeatable: any of them)");
}

std::string current_user() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (const passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return "unknown";
}

struct Options {
  std::string broker = "tcp://127.0.0.1:5555";
  double timeout_s = 10;
  bool json = false;
  std::string color = "auto";
  std::string certificate;  // the client's secret certificate
  std::string server_key;   // the broker's public certificate or key

  drunc::cli::ColorMode color_mode() const {
    if (color == "always") return drunc::cli::ColorMode::always;
    if (color == "never") return drunc::cli::ColorMode::never;
    return drunc::cli::ColorMode::automatic;
  }
};

// text with its lines broken at spaces to at most width columns (CLI11
// prints footers as they are; the man page shows them unfilled).
std::string wrapped(const std::string& text, std::size_t width = 100) {
  std::string out, line, word;
  auto flush_word = [&] {
    if (word.empty()) return;
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\n') flush_word();
    if (c == '\n') {
      out += line + "\n";
      line.clear();
    } else if (c != ' ') {
      word += c;
    }
  }
  flush_word();
  return out + line;
}

// Every failure ends here: one line on stderr, "drunc-pm: ...", or with
// --json one JSON object on stderr (stdout only ever holds answers):
// {"error": TEXT, "exit_code": N, "command": NAME[, "flag": FLAG, "text": REASON]}
// plus any extra fields (a session boot: "process", "left_running", "killed").
int fail(const Options& options, const std::string& command, int status, const std::string& message,
         const std::string& flag = {}, const std::string& text = {}, const nlohmann::json& extra = {}) {
  if (options.json) {
    nlohmann::json error = {{"error", message}, {"exit_code", status}, {"command", command}};
    if (!flag.empty()) {
      error["flag"] = flag;
      error["text"] = text;
    }
    if (extra.is_object()) error.update(extra);
    std::cerr << error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    const bool red = drunc::cli::use_color(options.color_mode(), STDERR_FILENO);
    std::cerr << (red ? "\033[31m" : "") << "drunc-pm: " << message << (red ? "\033[0m" : "") << std::endl;
  }
  return status;
}

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
    drunc::cli::print_process_table(list, long_format, std::cout,
                                    drunc::cli::use_color(options.color_mode(), STDOUT_FILENO));
}

// "a, b and c"
std::string names_of(const pm::ProcessInstanceList& list) {
  std::string text;
  for (int i = 0; i < list.values_size(); ++i) {
    if (i > 0) text += i + 1 == list.values_size() ? " and " : ", ";
    text += list.values(i).process_description().metadata().name();
  }
  return text;
}

// [{"name": ..., "session": ..., "uuid": ...}], for JSON errors.
nlohmann::json processes_json(const pm::ProcessInstanceList& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& process : list.values())
    out.push_back({{"name", process.process_description().metadata().name()},
                   {"session", process.process_description().metadata().session()},
                   {"uuid", process.uuid().uuid()}});
  return out;
}

// After a session boot that partly failed: with --atomic the booted
// processes are killed (by uuid); without, the operator is told which are left.
void after_partial_boot(drunc::client::Client& client, const pm::ProcessInstanceList& booted, std::size_t total,
                        bool atomic, int status, const Options& options) {
  if (booted.values_size() == 0) return;
  if (!atomic) {
    fail(options, "boot", status,
         std::to_string(booted.values_size()) + " of " + std::to_string(total) +
             " processes booted and left running: " + names_of(booted) + " (--atomic kills them when any boot fails)",
         {}, {}, {{"left_running", processes_json(booted)}});
    return;
  }
  try {
    const auto killed = client.kill(drunc::cli::by_uuid(booted));
    fail(options, "boot", status,
         "--atomic: killed the " + std::to_string(killed.values_size()) + " processes booted: " + names_of(killed), {},
         {}, {{"killed", processes_json(killed)}});
  } catch (const std::exception& error) {
    fail(options, "boot", status,
         "--atomic: could not kill the " + std::to_string(booted.values_size()) +
             " processes booted, left running: " + names_of(booted) + ": " + error.what(),
         {}, {}, {{"left_running", processes_json(booted)}});
  }
}

struct BootFailure {
  std::string name, flag, text;
};

// Pipelined boot of many processes: every request is sent before the first
// answer is awaited; a progress line is kept up to date on a terminal.
int boot_many(drunc::client::Client& client, const std::vector<pm::BootRequest>& requests, bool atomic,
              const Options& options) {
  std::unordered_map<std::string, std::size_t> index_of_request;
  for (std::size_t i = 0; i < requests.size(); ++i) index_of_request[client.send(Command::boot, &requests[i])] = i;

  const bool progress = ::isatty(STDERR_FILENO) && !options.json;
  pm::ProcessInstanceList booted;
  std::vector<BootFailure> failures;
  std::size_t answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + client.timeout();
  while (answered < requests.size()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto reply = left.count() > 0 ? client.receive(left) : std::nullopt;
    if (!reply) {
      if (progress) std::cerr << "\n";
      fail(options, "boot", 3,
           "boot: " + std::to_string(requests.size() - answered) + " of " + std::to_string(requests.size()) +
               " boots not answered in time by " + options.broker + " (they may still happen)");
      after_partial_boot(client, booted, requests.size(), atomic, 3, options);
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
      failures.push_back(
          {name, pm::ResponseFlag_Name(reply->response.flag()), drunc::client::response_text(reply->response)});
    }
    if (progress)
      std::cerr << "\rbooting: " << answered << "/" << requests.size() << " answered, " << failures.size() << " failed"
                << std::flush;
  }
  if (progress) std::cerr << "\n";
  if (failures.empty() || !atomic) print_list(booted, options, false);  // --atomic: they are about to go
  for (const auto& failure : failures)
    fail(options, "boot", 1, "boot failed: " + failure.name + ": " + failure.flag + ": " + failure.text, failure.flag,
         failure.text, {{"process", failure.name}});
  if (!failures.empty()) after_partial_boot(client, booted, requests.size(), atomic, 1, options);
  return failures.empty() ? 0 : 1;
}

// terminate kills everything: on a terminal it asks first; elsewhere it
// needs --yes, so that no script kills a whole broker by a slip.
bool confirm_terminate(drunc::client::Client& client, const Options& options) {
  if (!::isatty(STDIN_FILENO))
    throw CLI::ValidationError("terminate",
                               "it kills every process of the broker: give --yes (-y) to confirm "
                               "when standard input is not a terminal");
  const auto everything = client.ps();
  std::set<std::string> sessions;
  int running = 0;
  for (const auto& process : everything.values()) {
    sessions.insert(process.process_description().metadata().session());
    running += process.status_code() == pm::ProcessInstance::RUNNING;
  }
  std::string session_list;
  for (const auto& session : sessions) session_list += (session_list.empty() ? "" : ", ") + ("\"" + session + "\"");
  std::cerr << "terminate kills every process of the broker at " << options.broker << ": " << running << " running of "
            << everything.values_size() << " (sessions: " << (session_list.empty() ? "none" : session_list)
            << "). Proceed? [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drunc-pm: command-line client of the drunc-zmq process manager"};
  app.set_version_flag("--version", std::string(drunc::kVersionText));
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  Options options;
  if (const char* broker = std::getenv("DRUNC_PM_BROKER"); broker && *broker) options.broker = broker;
  app.add_option("-b,--broker", options.broker,
                 "control endpoint of the broker, tcp://HOST:PORT or ipc://PATH "
                 "(env DRUNC_PM_BROKER)")
      ->capture_default_str();
  app.add_option("-t,--timeout", options.timeout_s, "seconds to wait for an answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", options.json,
               "print answers as JSON, one document per line; errors as one JSON object on stderr");
  app.add_option("--color", options.color, "colour output: auto (on a terminal, unless NO_COLOR is set), always, never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "always", "never"}));
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
  bool allow_duplicates = false, atomic = false, no_local_check = false;
  boot->add_option("-f,--file", session_file, "JSON session file (see config/demo-session.json)");
  boot->add_option("-n,--name", boot_name, "friendly name of the process");
  boot->add_option("-s,--session", boot_session, "session of the process");
  boot->add_option("-u,--user", boot_user, "user of the process")->capture_default_str();
  boot->add_option("-H,--host", boot_hosts, "allowed host, tried in order (repeatable; default localhost)");
  boot->add_option("-d,--directory", boot_dir, "execution directory");
  boot->add_option("-l,--log", boot_log, "log file the output is appended to");
  boot->add_option("-e,--env", boot_env, "environment variable NAME=VALUE (repeatable)");
  boot->add_flag("--allow-duplicates", allow_duplicates,
                 "boot even when the session already has a process of that name (alive or dead)");
  boot->add_flag("--atomic", atomic, "with --file: when any boot fails, kill the processes that did boot");
  boot->add_flag("--no-local-check", no_local_check,
                 "do not check that executables and directories exist when the process would run on this machine");
  boot->footer(
      "The command follows --, e.g.: drunc-pm boot -n app -- my-exe --its-option value\n"
      "Refused before anything is sent: a name the session already has (unless --allow-duplicates); "
      "when the broker and every allowed host are this machine, an executable or execution directory "
      "that does not exist here (unless --no-local-check). A session file boot that partly fails says "
      "which processes are left running, or kills them with --atomic.");

  drunc::cli::Selection ps_selection, kill_selection, flush_selection, restart_selection, logs_selection;
  auto* ps = app.add_subcommand("ps", "list processes (all, or the selected ones)");
  add_selection_options(ps, ps_selection);
  ps->footer(kSelectionFooter);
  bool long_format = false;
  ps->add_flag("-l,--long-format", long_format, "also show directory, log path and command");
  auto* kill =
      app.add_subcommand("kill", "kill the matching processes (all options must match; a selection is required)");
  add_selection_options(kill, kill_selection);
  kill->footer(std::string(kSelectionFooter) + " No match: \"no process matched\", exit 4. Everything: terminate.");
  auto* flush = app.add_subcommand("flush", "forget the selected dead processes (all dead ones with no selection)");
  add_selection_options(flush, flush_selection);
  flush->footer(std::string(kSelectionFooter) +
                " A selection that matches no process, or only living ones, flushes nothing and exits 4.");
  auto* restart = app.add_subcommand("restart", "restart exactly one process (a selection is required)");
  add_selection_options(restart, restart_selection);
  restart->footer(std::string(kSelectionFooter) +
                  " It must select exactly one process; otherwise nothing is restarted, the matches are named and "
                  "the exit status is 4.");
  auto* terminate = app.add_subcommand("terminate", "kill every process (asks first on a terminal)");
  bool terminate_yes = false;
  terminate->add_flag("-y,--yes", terminate_yes, "do not ask; required when standard input is not a terminal");
  auto* logs = app.add_subcommand("logs", "print the last lines of one process's output");
  add_selection_options(logs, logs_selection);
  logs->footer(std::string(kSelectionFooter) + " It must select exactly one process (exit 4 otherwise).");
  drunc::cli::LogsOptions logs_options;
  logs->add_option("--how-far", logs_options.how_far, "number of lines")->capture_default_str();
  logs->add_option("--grep", logs_options.grep, "only the lines matching this regular expression");
  logs->add_flag("-f,--follow", logs_options.follow, "then print new lines as they come, until the process ends");

  auto* watch = app.add_subcommand("watch", "print the live feed of log lines, state changes and broadcasts");
  drunc::cli::WatchOptions watch_options;
  watch->add_option("-s,--session", watch_options.session, "only this session's log lines and state changes");
  watch->add_option("-n,--name", watch_options.name, "only the process with exactly this friendly name");
  watch->add_flag("--logs", watch_options.logs, "log lines");
  watch->add_flag("--states", watch_options.states, "state changes");
  watch->add_flag("--broadcasts", watch_options.broadcasts, "the broker's broadcasts (default: all three kinds)");
  watch->footer(
      "Each line starts with the time the broker published the event. -s and -n narrow log lines and "
      "state changes; the broker's broadcasts are always shown (when chosen). Ends, saying so on stderr, "
      "when the broker broadcasts SERVER_SHUTDOWN; otherwise runs until Ctrl-C.");

  // Each command's help ends with the exit statuses. Not the top level's:
  // the man page and the bash completion read its subcommands from the
  // lines after "Subcommands:" (man/commands.sh, completion/drunc-pm).
  const std::string exit_statuses =
      "Exit status: 0 success; 1 the broker answered an error, a session boot partly failed, or a boot was refused "
      "up front; 2 bad usage; 3 the broker could not be reached or did not answer in time; 4 the selection matched "
      "no process (or several where one is needed). See docs/CLI.md.";
  for (auto* command : app.get_subcommands({}))
    command->footer(
        wrapped(command->get_footer().empty() ? exit_statuses : command->get_footer() + "\n" + exit_statuses));

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
  std::string command_name = "drunc-pm";
  try {
    app.parse(parsed_argc, argv);
  } catch (const CLI::ParseError& error) {
    // --json may not have been read yet when parsing stopped: look for it.
    for (int i = 1; i < parsed_argc; ++i) options.json = options.json || std::string_view(argv[i]) == "--json";
    if (error.get_exit_code() == 0 || !options.json) {
      const int status = app.exit(error);  // prints help or the error
      return status == 0 ? 0 : 2;
    }
    return fail(options, command_name, 2, error.what());
  }
  command_name = app.get_subcommands().front()->get_name();

  try {
    if (*keygen_command) return keygen(keygen_name, keygen_user, keygen_role, keygen_sessions);
    if (const auto problem = drunc::cli::endpoint_problem(options.broker); !problem.empty())
      throw CLI::ValidationError("--broker", problem);
    if (*kill && kill_selection.empty())
      throw CLI::ValidationError("kill", "give a selection (-s, -n, -u, --uuid); to kill every process: terminate");
    if (*restart && restart_selection.empty())
      throw CLI::ValidationError("restart", "give a selection (-s, -n, -u, --uuid) of exactly one process");
    if (*boot && atomic && session_file.empty()) throw CLI::ValidationError("boot", "--atomic needs --file");
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
    drunc::client::Client client(options.broker, std::chrono::milliseconds(static_cast<long>(options.timeout_s * 1000)),
                                 std::move(keys));
    client.set_token(token);
    client.fail_fast_on_connect(true);  // nothing listening: say so now, not after the timeout

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
        std::cout << "events: " << feed.address() << " (" << feed.protocol() << "), " << feed.events_dropped()
                  << " refused to slow subscribers since start\n";
        std::cout << "security: " << (feed.security_mode().empty() ? "unknown" : feed.security_mode())
                  << (feed.insecure_network_allowed()
                          ? " -- INSECURE: reachable from the network with no authentication "
                            "(security.allow_insecure_network)"
                          : "")
                  << "\n";
      }
      std::vector<std::vector<std::string>> rows = {{"command", "data type", "return type", "help"}};
      for (const auto& command : description.commands())
        rows.push_back({command.name(), command.data_type_size() ? command.data_type(0) : "", command.return_type(),
                        command.help()});
      std::cout << "\n";
      drunc::cli::print_aligned(rows, std::cout);
    } else if (*boot) {
      std::vector<pm::BootRequest> requests;
      if (!session_file.empty()) {
        if (!boot_command.empty() || !boot_name.empty())
          throw CLI::ValidationError("boot", "--file cannot be combined with --name or a command");
        requests = drunc::cli::load_session_file(session_file, boot_user);
      } else {
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
        requests.push_back(std::move(request));
      }
      if (!no_local_check) drunc::cli::refuse_missing_local_files(options.broker, requests);
      if (!allow_duplicates) drunc::cli::refuse_duplicate_names(client, requests);
      if (!session_file.empty()) return boot_many(client, requests, atomic, options);
      print_list(client.boot(requests.front()), options, false);
    } else if (*ps) {
      print_list(ps_selection.empty() ? client.ps() : drunc::cli::select(client, ps_selection), options, long_format);
    } else if (*kill) {
      const auto selected = drunc::cli::select(client, kill_selection);
      if (selected.values_size() == 0)
        throw drunc::cli::SelectionError("no process matched " + kill_selection.describe() + ": nothing killed");
      print_list(client.kill(drunc::cli::by_uuid(selected)), options, false);
    } else if (*flush) {
      const auto selected = drunc::cli::select(client, flush_selection);
      pm::ProcessInstanceList dead;
      for (const auto& process : selected.values())
        if (process.status_code() == pm::ProcessInstance::DEAD) *dead.add_values() = process;
      if (!flush_selection.empty() && selected.values_size() == 0)
        throw drunc::cli::SelectionError("no process matched " + flush_selection.describe() + ": nothing flushed");
      if (!flush_selection.empty() && dead.values_size() == 0)
        throw drunc::cli::SelectionError(flush_selection.describe() +
                                         " matches only living processes, which flush "
                                         "leaves: " +
                                         drunc::cli::describe_processes(selected) + ": nothing flushed");
      print_list(dead.values_size() == 0 ? dead : client.flush(drunc::cli::by_uuid(dead)), options, false);
    } else if (*restart) {
      pm::ProcessInstanceList one;
      *one.add_values() = drunc::cli::select_one(client, restart_selection);
      print_list(client.restart(drunc::cli::by_uuid(one)), options, false);
    } else if (*terminate) {
      if (!terminate_yes && !confirm_terminate(client, options))
        return fail(options, command_name, 1, "terminate cancelled: nothing killed");
      print_list(client.terminate(), options, false);
    } else if (*watch) {
      drunc_zmq::EventFeed feed;
      if (!client.describe().broadcast().UnpackTo(&feed))
        throw std::runtime_error("the broker does not say where its event feed is");
      watch_options.json = options.json;
      watch_options.color = drunc::cli::use_color(options.color_mode(), STDOUT_FILENO);
      watch_options.keys = client.curve_keys();
      return drunc::cli::watch(feed.address(), watch_options);
    } else if (*logs) {
      pm::ProcessInstanceList one;
      *one.add_values() = drunc::cli::select_one(client, logs_selection);
      logs_options.query = drunc::cli::by_uuid(one);
      logs_options.json = options.json;
      return drunc::cli::print_logs(client, logs_options);
    }
  } catch (const CLI::Error& error) {
    if (!options.json) {
      app.exit(error);
      return 2;
    }
    return fail(options, command_name, 2, error.what());
  } catch (const drunc::cli::SessionFileError& error) {
    return fail(options, command_name, 2, error.what());
  } catch (const drunc::cli::SelectionError& error) {
    return fail(options, command_name, 4, command_name + ": " + error.what());
  } catch (const drunc::cli::BootRefused& error) {
    return fail(options, command_name, 1, "boot refused: " + std::string(error.what()));
  } catch (const drunc::client::ResponseError& error) {
    return fail(options, command_name, 1, command_name + " failed: " + error.what(),
                pm::ResponseFlag_Name(error.flag()), error.text());
  } catch (const drunc::client::HandshakeError& error) {
    return fail(options, command_name, 1, error.what());
  } catch (const drunc::client::ConnectError& error) {
    return fail(options, command_name, 3, error.what());
  } catch (const drunc::client::TimeoutError& error) {
    std::ostringstream seconds;
    seconds << options.timeout_s;
    return fail(options, command_name, 3,
                "no answer from " + options.broker + " within " + seconds.str() + " s: is drunc-broker running there?");
  } catch (const std::exception& error) {
    return fail(options, command_name, 1, error.what());
  }
  return 0;
}

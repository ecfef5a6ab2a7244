// The launch script is run here by a real bash: what a process receives is
// compared byte for byte with what the description said.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "launch_script.hpp"
#include "ssh/remote_command.hpp"

using namespace drunc::workers;
namespace pm = dunedaq::druncschema;

namespace {

struct Run {
  std::string output;
  int status = -1;
};

// Runs `bash -c script` and collects its output and exit status.
Run run_script(const std::string& script) {
  const auto path = std::filesystem::temp_directory_path() / ("drunc-script-" + std::to_string(::getpid()));
  { std::ofstream(path) << script; }
  const std::string command = "bash --noprofile --norc " + shell_quote(path.string()) + " </dev/null 2>&1";
  Run run;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove(path);
  return run;
}

pm::ProcessDescription description_running(const std::string& exec, const std::vector<std::string>& args) {
  pm::ProcessDescription description;
  description.mutable_metadata()->set_name("test");
  auto* command = description.add_executable_and_arguments();
  command->set_exec(exec);
  for (const auto& argument : args) command->add_args(argument);
  return description;
}

const std::vector<std::string> kHostile = {"a b \"c\" $(id) ; rm -rf x",
                                           "'",
                                           "''\\''",
                                           "\\",
                                           "$HOME",
                                           "`id`",
                                           "*",
                                           "~",
                                           "",
                                           " ",
                                           "tab\there",
                                           "line\nbreak",
                                           "ünï©ødé",
                                           "-n",
                                           "--",
                                           "&& echo pwned",
                                           "|",
                                           "> /tmp/x",
                                           "!!",
                                           "${PATH:0:1}"};

}  // namespace

TEST_CASE("shell_quote makes one word that expands to exactly the text") {
  for (const auto& text : kHostile) {
    const Run run = run_script("printf '%s' " + shell_quote(text));
    CHECK(run.output == text);
  }
}

TEST_CASE("arguments reach the process byte for byte, as separate arguments") {
  std::vector<std::string> args = {"[%s]\\n"};
  args.insert(args.end(), kHostile.begin(), kHostile.end());
  const Run run = run_script(build_launch_script(description_running("printf", args), {}));
  std::string expected;
  for (const auto& text : kHostile) expected += "[" + text + "]\n";
  CHECK(run.output == expected);
  CHECK(run.status == 0);
}

TEST_CASE("env values reach the process verbatim") {
  auto description = description_running("bash", {"-c", "printf '[%s]' \"$HOSTILE\" \"$OTHER\""});
  (*description.mutable_env())["HOSTILE"] = "a b \"c\" $(id) ; rm -rf x";
  (*description.mutable_env())["OTHER"] = "'$PATH'\n`id`";
  const Run run = run_script(build_launch_script(description, {}));
  CHECK(run.output == "[a b \"c\" $(id) ; rm -rf x]['$PATH'\n`id`]");
}

TEST_CASE("the commands run one after another in the execution directory: the last status is the script's") {
  const auto directory = std::filesystem::temp_directory_path() / "drunc dir with spaces";
  std::filesystem::create_directories(directory);
  auto description = description_running("pwd", {});
  auto* second = description.add_executable_and_arguments();
  second->set_exec("bash");
  second->add_args("-c");
  second->add_args("echo second; exit 5");
  description.set_process_execution_directory(directory.string());
  const Run run = run_script(build_launch_script(description, {}));
  CHECK(run.output == directory.string() + "\nsecond\n");
  CHECK(run.status == 5);
}

TEST_CASE("a missing execution directory fails the script before any command runs") {
  auto description = description_running("echo", {"must not run"});
  description.set_process_execution_directory("/nonexistent/drunc");
  const Run run = run_script(build_launch_script(description, {}));
  CHECK(run.output.find("must not run") == std::string::npos);
  CHECK(run.status == 126);
}

TEST_CASE("output is appended to the log file with a header per incarnation, and still streamed") {
  const auto log = std::filesystem::temp_directory_path() / "drunc log with spaces.log";
  std::filesystem::remove(log);
  auto description = description_running("echo", {"hello"});
  description.set_process_logs_path(log.string());
  const Run first = run_script(build_launch_script(description, {"uuid-1", 1, "localhost", "T1"}));
  const Run second = run_script(build_launch_script(description, {"uuid-1", 2, "localhost", "T2"}));
  CHECK(first.output == "hello\n");
  CHECK(second.output == "hello\n");
  std::ifstream file(log);
  std::stringstream content;
  content << file.rdbuf();
  CHECK(content.str() ==
        "=== drunc-zmq: test uuid uuid-1 generation 1 on localhost at T1 ===\nhello\n"
        "=== drunc-zmq: test uuid uuid-1 generation 2 on localhost at T2 ===\nhello\n");
  std::filesystem::remove(log);
}

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// The script run as the local launcher runs it: `bash -c`, in a process
// group of its own, output to a pipe (out), the lifeline as kLifelineFd if given.
struct InGroup {
  pid_t pid = -1;
  int out = -1;

  InGroup(const std::string& script, int lifeline = -1, const std::string& status_path = {}) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      const int high = lifeline >= 0 ? ::fcntl(lifeline, F_DUPFD, 10) : -1;  // clear of every fd below
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      if (high >= 0) {
        ::dup2(high, kLifelineFd);
        ::close(high);
      }
      const std::string text = launcher_prologue(lifeline >= 0, false, status_path) + script;
      ::execl("/bin/bash", "bash", "--noprofile", "--norc", "-c", text.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // on both sides, so that a signal sent right away finds the group
    ::close(fds[1]);
    out = fds[0];
  }
  ~InGroup() {
    ::kill(-pid, SIGKILL);
    ::close(out);
  }
  // Reads output until a line equal to text (false at end of output).
  bool wait_for_line(const std::string& text) {
    std::string line;
    char c;
    while (::read(out, &c, 1) == 1) {
      if (c != '\n') {
        line += c;
      } else if (line == text) {
        return true;
      } else {
        line.clear();
      }
    }
    return false;
  }
  // The status as the shell reports it: the exit code, or 128+N.
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // The live (not zombie) processes of the group, from /proc.
  std::vector<int> members() const {
    std::vector<int> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = read_file(entry.path() / "stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state;
      int parent = 0, group = 0;
      rest >> state >> parent >> group;
      if (group == pid && state != "Z") found.push_back(std::stoi(name));
    }
    return found;
  }
};

}  // namespace

TEST_CASE("a kill before any command has started ends the script with 128+N, never 0") {
  // Found by a probe (issue 11 item 8): `trap 'exit $?'` fired before the
  // command started, when $? was a setup line's 0, and reported "exited with
  // status 0". The signal is sent by the script itself at a chosen place: after
  // each line between the traps and the line that marks the first command.
  const auto log = std::filesystem::temp_directory_path() / ("drunc-early-kill-" + std::to_string(::getpid()) + ".log");
  auto description = description_running("sleep", {"30"});
  description.set_process_logs_path(log.string());
  description.set_process_execution_directory("/");
  (*description.mutable_env())["X"] = "y";
  const std::string script = build_launch_script(description, {"u", 1, "localhost", "T"});
  const auto from = script.find("exec </dev/null\n");
  const auto to = script.find(": \"${drunc_started:=");
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  int lifeline[2];  // so that the lifeline's lines run too
  REQUIRE(::pipe2(lifeline, O_CLOEXEC) == 0);
  int places = 0;
  for (auto at = script.find('\n', from); at != std::string::npos && at < to; at = script.find('\n', at + 1)) {
    const std::string before = script.substr(0, at + 1);
    if (before.ends_with("||\n")) continue;  // a command continued on the next line
    for (const auto& [signal, status] : {std::pair{"QUIT", 131}, std::pair{"TERM", 143}}) {
      const std::string killed = before + "kill -" + signal + " $$\n" + script.substr(at + 1);
      InGroup process(killed, lifeline[0]);
      INFO("signal " << signal << " after:\n" << before);
      CHECK(process.wait() == status);
    }
    ++places;
  }
  CHECK(places >= 10);
  ::close(lifeline[0]);
  ::close(lifeline[1]);
  std::filesystem::remove(log);
}

TEST_CASE("a command that handles the stop signal keeps its own status") {
  const auto description = description_running(
      "bash", {"-c", "trap 'echo graceful; exit 0' QUIT; echo ready; while :; do sleep 0.01; done"});
  InGroup process(build_launch_script(description, {}));
  REQUIRE(process.wait_for_line("ready"));
  ::kill(-process.pid, SIGQUIT);
  CHECK(process.wait_for_line("graceful"));
  CHECK(process.wait() == 0);
}

TEST_CASE("given a lifeline, the whole group dies when its write end closes, and a normal end leaves nothing") {
  int lifeline[2];
  REQUIRE(::pipe2(lifeline, O_CLOEXEC) == 0);
  SECTION("the lifeline ends: the command and its children are killed") {
    InGroup process(
        build_launch_script(description_running("sh", {"-c", "sleep 300 & echo ready; exec sleep 301"}), {}),
        lifeline[0]);
    REQUIRE(process.wait_for_line("ready"));
    ::close(lifeline[1]);
    CHECK(process.wait() == 128 + SIGKILL);
    // The others got the same SIGKILL; they are gone once the kernel has ended them.
    for (int i = 0; i < 1000 && !process.members().empty(); ++i) ::usleep(10000);
    CHECK(process.members().empty());
  }
  SECTION("the command ends: the script exits with its status, the watcher reaped, the group empty") {
    InGroup process(build_launch_script(description_running("sh", {"-c", "exit 7"}), {}), lifeline[0]);
    CHECK(process.wait() == 7);
    CHECK(process.members().empty());
    ::close(lifeline[1]);
  }
  ::close(lifeline[0]);
}

TEST_CASE("given a status file, the script records its exit status there as it ends (on_broker_exit keep)") {
  const auto status = std::filesystem::temp_directory_path() / ("drunc-status-" + std::to_string(::getpid()));
  std::filesystem::remove(status);
  SECTION("its command's status") {
    InGroup process(build_launch_script(description_running("sh", {"-c", "exit 7"}), {}), -1, status.string());
    CHECK(process.wait() == 7);
    CHECK(read_file(status) == "7\n");
  }
  SECTION("a kill's") {
    InGroup process(build_launch_script(description_running("sh", {"-c", "echo ready; exec sleep 300"}), {}), -1,
                    status.string());
    REQUIRE(process.wait_for_line("ready"));
    ::kill(-process.pid, SIGQUIT);
    CHECK(process.wait() == 128 + SIGQUIT);
    CHECK(read_file(status) == std::to_string(128 + SIGQUIT) + "\n");
  }
  SECTION("none without a status file") {
    InGroup process(build_launch_script(description_running("sh", {"-c", "exit 7"}), {}));
    CHECK(process.wait() == 7);
    CHECK_FALSE(std::filesystem::exists(status));
  }
  std::filesystem::remove(status);
}

TEST_CASE("the log file: missing directories 0750, a new file 0640, header and output appended") {
  const auto base = std::filesystem::temp_directory_path() / ("drunc-log-dirs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  const auto log = base / "a" / "b" / "p.log";
  auto description = description_running("echo", {"hello"});
  description.set_process_logs_path(log.string());
  const Run run = run_script(build_launch_script(description, {"uuid-1", 1, "localhost", "T1"}));
  CHECK(run.status == 0);
  CHECK(run.output == "hello\n");
  CHECK(read_file(log) == "=== drunc-zmq: test uuid uuid-1 generation 1 on localhost at T1 ===\nhello\n");
  using std::filesystem::perms;
  CHECK((std::filesystem::status(base / "a").permissions() & perms::all) == perms(0750));
  CHECK((std::filesystem::status(base / "a" / "b").permissions() & perms::all) == perms(0750));
  CHECK((std::filesystem::status(log).permissions() & perms::all) == perms(0640));
  std::filesystem::remove_all(base);
}

TEST_CASE("a log path the script cannot use refuses to run the command, with status 125 and the path named") {
  const auto base = std::filesystem::temp_directory_path() / ("drunc-log-bad-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  std::filesystem::create_directories(base / "directory");
  const auto target = base / "target";
  { std::ofstream(target) << "precious\n"; }
  std::filesystem::create_symlink(target, base / "link");
  REQUIRE(::mkfifo((base / "fifo").c_str(), 0600) == 0);
  for (const auto& [path, why] :
       std::vector<std::pair<std::string, std::string>>{{(base / "directory").string(), "not a regular file"},
                                                        {"/dev/full", "not a regular file"},
                                                        {(base / "fifo").string(), "not a regular file"},
                                                        {(base / "link").string(), "symbolic link"}}) {
    auto description = description_running("echo", {"must not run"});
    description.set_process_logs_path(path);
    const Run run = run_script(build_launch_script(description, {"u", 1, "localhost", "T"}));
    INFO(path);
    CHECK(run.status == kLogFileStatus);
    CHECK(run.output.find("must not run") == std::string::npos);
    CHECK_THAT(run.output, Catch::Contains(path) && Catch::Contains(why));
  }
  CHECK(read_file(target) == "precious\n");
  std::filesystem::remove_all(base);
}

TEST_CASE("log_file_of gives the path and header line the script writes") {
  for (const auto& path : kHostile) {
    if (path.empty()) continue;
    auto description = description_running("echo", {"drunc_log='/etc/passwd'"});
    description.set_process_logs_path(path);
    description.mutable_metadata()->set_name(path);
    const auto log = log_file_of(description, {"uuid-1", 2, "host", "T"});
    REQUIRE(log);
    CHECK(log->path == path);
    CHECK(log->header == "=== drunc-zmq: " + path + " uuid uuid-1 generation 2 on host at T ===");
  }
  CHECK_FALSE(log_file_of(description_running("echo", {"drunc_log='/x'"}), {}));
}

TEST_CASE("a Launch's incarnation: its uuid, generation and allowed host, started now") {
  drunc_zmq::internal::Launch launch;
  launch.set_uuid("uuid-1");
  launch.set_generation(3);
  launch.set_host("daq-01");
  launch.set_allowed_host("daq-01:2222");
  const Incarnation incarnation = incarnation_of(launch);
  CHECK(incarnation.uuid == "uuid-1");
  CHECK(incarnation.generation == 3);
  CHECK(incarnation.host == "daq-01:2222");
  CHECK_FALSE(incarnation.started_at.empty());
}

TEST_CASE("descriptions that no script can carry are refused") {
  SECTION("no executable") {
    CHECK_THROWS_AS(build_launch_script(pm::ProcessDescription(), {}), InvalidDescription);
    CHECK_THROWS_AS(check_description(pm::ProcessDescription()), InvalidDescription);
  }
  SECTION("empty exec") { CHECK_THROWS_AS(build_launch_script(description_running("", {}), {}), InvalidDescription); }
  SECTION("env name that is not an identifier") {
    for (const std::string name : {"", "1ABC", "A-B", "A B", "X;id", "A=B"}) {
      auto description = description_running("true", {});
      (*description.mutable_env())[name] = "v";
      CHECK_THROWS_WITH(build_launch_script(description, {}), Catch::Contains("env name"));
      CHECK_THROWS_WITH(check_description(description), Catch::Contains("env name"));
    }
  }
  SECTION("NUL byte in an argument") {
    CHECK_THROWS_WITH(build_launch_script(description_running("echo", {std::string("a\0b", 3)}), {}),
                      Catch::Contains("NUL"));
  }
  // Found by fuzz_request: the name goes into the log header, and a NUL there
  // cut the script (bash -c takes a C string) inside a quoted word, so the
  // process booted and died of a syntax error instead of being refused.
  SECTION("NUL byte in the name of a process with a log file") {
    auto description = description_running("echo", {"hello"});
    description.mutable_metadata()->set_name(std::string("a\0b", 3));
    description.set_process_logs_path("/tmp/drunc-nul-name.log");
    CHECK_THROWS_WITH(build_launch_script(description, {"uuid-1", 1, "localhost", "T1"}),
                      Catch::Contains("NUL") && Catch::Contains("name"));
    CHECK_THROWS_WITH(check_description(description), Catch::Contains("NUL") && Catch::Contains("name"));
  }
}

TEST_CASE("shell identifiers") {
  CHECK(is_shell_identifier("PATH"));
  CHECK(is_shell_identifier("_x1"));
  CHECK_FALSE(is_shell_identifier("1x"));
  CHECK_FALSE(is_shell_identifier("a.b"));
}

TEST_CASE("a printf %b word passes through every login shell here and decodes to the text") {
  std::vector<std::string> texts = kHostile;
  texts.push_back(std::string("\x01\x7f\xff", 3));
  texts.push_back("\\0134 \\n \\c stop? \\x41 %s %b %%");
  texts.push_back(build_launch_script(description_running("printf", kHostile), {}));
  for (const std::string shell : {"/bin/sh", "/bin/bash", "/bin/tcsh", "/usr/bin/zsh", "/usr/bin/fish"}) {
    if (!std::filesystem::exists(shell)) continue;  // scripts/install-deps.sh installs tcsh, zsh and fish
    for (const auto& text : texts) {
      // What sshd does with the command: the login shell runs it with -c.
      const std::string line =
          "exec bash --noprofile --norc -c 'printf -v s %b \"$1\"; printf %s \"$s\"' x " + printf_b_word(text);
      const Run run = run_script("exec " + shell + " -c " + shell_quote(line));
      INFO(shell << " with " << shell_quote(text));
      CHECK(run.status == 0);
      CHECK(run.output == text);
    }
  }
}

// The launch script is run here by a real bash: what a process receives is
// compared byte for byte with what the description said.
#include <catch2/catch.hpp>

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

const std::vector<std::string> kHostile = {
    "a b \"c\" $(id) ; rm -rf x", "'", "''\\''", "\\", "$HOME", "`id`", "*", "~", "", " ", "tab\there",
    "line\nbreak", "ünï©ødé", "-n", "--", "&& echo pwned", "|", "> /tmp/x", "!!", "${PATH:0:1}"};

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

TEST_CASE("descriptions that no script can carry are refused") {
  SECTION("no executable") { CHECK_THROWS_AS(build_launch_script(pm::ProcessDescription(), {}), InvalidDescription); }
  SECTION("empty exec") { CHECK_THROWS_AS(build_launch_script(description_running("", {}), {}), InvalidDescription); }
  SECTION("env name that is not an identifier") {
    for (const std::string name : {"", "1ABC", "A-B", "A B", "X;id", "A=B"}) {
      auto description = description_running("true", {});
      (*description.mutable_env())[name] = "v";
      CHECK_THROWS_WITH(build_launch_script(description, {}), Catch::Contains("env name"));
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
      const std::string line = "exec bash --noprofile --norc -c 'printf -v s %b \"$1\"; printf %s \"$s\"' x " +
                               printf_b_word(text);
      const Run run = run_script("exec " + shell + " -c " + shell_quote(line));
      INFO(shell << " with " << shell_quote(text));
      CHECK(run.status == 0);
      CHECK(run.output == text);
    }
  }
}

#include "remote_command.hpp"

#include "launch_script.hpp"

namespace drunc::workers {
namespace {

// $1 is the launch script. Job control (set -m) puts it in a process group of
// its own and, unlike a plain background job, does not make it ignore SIGINT
// and SIGQUIT. fd 3 keeps the channel's stdin for the watcher (background jobs
// otherwise read /dev/null); the script itself does not get it. Job-control
// chatter ("[1]+ Done") goes to the wrapper's stderr, which is /dev/null from
// the start: a process that ends at once would otherwise have it in its
// output. The channel's stderr stays on fd 4 for the pid line alone.
constexpr const char* kWrapper = R"wrapper(exec 3<&0 </dev/null 4>&2 2>/dev/null
set -m
bash --noprofile --norc -c "$1" 3<&- 4>&- 2>&1 &
group=$!
printf 'DRUNC-PID %d\n' "$group" >&4
exec 4>&-
(
  while read -r signal <&3; do
    case $signal in QUIT|KILL|TERM|INT|HUP) kill -s "$signal" -- "-$group" 2>/dev/null ;; esac
  done
  kill -s KILL -- "-$group" 2>/dev/null
) &
watcher=$!
wait "$group"
status=$?
# Ended by itself: let the rest of the group (tee) drain the output first.
# Ended by a signal: nothing more is worth waiting for.
[ "$status" -ge 128 ] ||
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40; do
  kill -0 -- "-$group" 2>/dev/null || break
  sleep 0.05
done
kill -s KILL -- "-$group" 2>/dev/null
kill "$watcher" 2>/dev/null
exit "$status"
)wrapper";

}  // namespace

// No newline (csh refuses one inside quotes), no quote, no `!` (csh
// history), and no backslash pair (fish reads one inside single quotes):
// each becomes an escape that %b reads.
std::string printf_b_word(std::string_view text) {
  std::string word = "'";
  for (const char c : text) {
    switch (c) {
      case '\n': word += "\\n"; break;
      case '\\': word += "\\0134"; break;
      case '\'': word += "\\0047"; break;
      case '!': word += "\\0041"; break;
      default: word += c;
    }
  }
  return word + "'";
}

std::string remote_command(const std::string& launch_script) {
  // The login shell reads this line first, whatever it is (sh, bash, zsh,
  // tcsh, fish): plain words and single-quoted strings without newlines,
  // which all of them pass on as they are; bash decodes the wrapper and the
  // script (printf %b, a builtin: no extra process).
  return "exec bash --noprofile --norc -c 'printf -v w %b \"$1\"; printf -v s %b \"$2\"; "
         "exec bash --noprofile --norc -c \"$w\" drunc-pm \"$s\"' drunc-pm " +
         printf_b_word(kWrapper) + " " + printf_b_word(launch_script);
}

}  // namespace drunc::workers

#!/usr/bin/env bash
# drunc-pm as an operator uses it: against a real drunc-broker, checking the
# tables, the JSON, the exit statuses and the one-line errors.
# Usage: test_cli.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
pm_bin=$build/client/drunc-pm
broker_bin=$build/broker/drunc-broker
python=/usr/bin/python3
work=$(mktemp -d)
passed=0
failed=0

cleanup() {
  [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

check() {  # check NAME COMMAND...: the command must succeed
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $name"
  fi
}

# --version: the project's version (and the commit, when built from a checkout), status 0.
for program in "$pm_bin" "$broker_bin"; do
  out=$("$program" --version)
  check "$(basename "$program") --version succeeds" test $? -eq 0
  check "$(basename "$program") --version names the version" grep -Eq '^drunc-zmq [0-9]+\.[0-9]+\.[0-9]+( \(git [0-9a-f]+(-dirty)?\))?$' <<<"$out"
done

cat >"$work/broker.json" <<JSON
{"name": "cli-pm", "session": "cli-test", "control_endpoint": "tcp://127.0.0.1:*",
 "events_endpoint": "tcp://127.0.0.1:*", "kill_timeout_s": 0.3}
JSON

# Start the broker and wait for its "serving on" line: an event, not a delay.
exec {broker_out}< <(exec "$broker_bin" --config "$work/broker.json" 2>&1)
broker_pid=$!
endpoint=""
while IFS= read -r -t 30 -u "$broker_out" line; do
  if [[ $line =~ serving\ on\ (tcp://[0-9.]+:[0-9]+) ]]; then
    endpoint=${BASH_REMATCH[1]}
    break
  fi
done
[ -n "$endpoint" ] || { echo "FAILED: the broker did not start"; exit 1; }
cat <&"$broker_out" >/dev/null &  # keep draining its log so it never blocks

pm() { "$pm_bin" --broker "$endpoint" "$@"; }

# describe
out=$(pm describe)
check "describe names the broker" grep -q "^name: cli-pm" <<<"$out"
check "describe shows the event feed" grep -q "^events: tcp://127.0.0.1:" <<<"$out"
check "describe lists logs" grep -q "^logs .*dunedaq.druncschema.LogRequest" <<<"$out"

# boot from flags: the command after -- is passed verbatim, options included
out=$(pm boot -n echoer -s cli-test -e 'GREETING=hello $(id)' -- bash -c 'echo "$GREETING|$0|$1"; sleep 300' '-n' 'a b; rm -rf /')
check "boot prints the table header" grep -q "^session  *friendly name  *user  *host  *uuid  *alive  *exit-code" <<<"$out"
check "boot prints the process alive" grep -Eq "^cli-test +echoer +[^ ]+ +localhost +[0-9a-f-]{36} +True" <<<"$out"

# boot a session file: pipelined, all answered, a table of all of them
cat >"$work/session.json" <<JSON
{"session": "filed", "logs_directory": "$work",
 "processes": [
   {"name": "one", "commands": [["sleep", "300"]]},
   {"name": "two", "commands": [["sleep", "300"]]},
   {"name": "three", "commands": [["bash", "-c", "echo three; exit 5"]]}
 ]}
JSON
out=$(pm boot --file "$work/session.json")
check "boot --file boots every process" test "$(grep -c '^filed ' <<<"$out")" -eq 3

# ps, with queries and the long format
out=$(pm ps)
check "ps lists everything" test "$(grep -Ec '^(cli-test|filed) ' <<<"$out")" -eq 4
out=$(pm ps -s filed -n '^t')
check "ps narrows: session AND name" test "$(grep -Ec '^filed +(two|three) ' <<<"$out")" -eq 2
check "ps narrows: nothing else" test "$(grep -Ec '^(filed|cli-test) ' <<<"$out")" -eq 2
out=$(pm ps --long-format -n echoer)
check "ps --long-format shows the command, quoted" grep -qF "'a b; rm -rf /'" <<<"$out"

# logs: the hostile arguments arrived as they were
out=$(pm logs -n echoer)
check "logs shows the verbatim argv and env" grep -qxF 'hello $(id)|-n|a b; rm -rf /' <<<"$out"
out=$(pm logs -n '^one$' --how-far 5)
check "logs of a silent process is empty" test -z "$out"

# JSON output parses and has the schema's field names
out=$(pm ps --json -n echoer)
check "ps --json is JSON with the process" "$python" -c '
import json, sys
doc = json.loads(sys.argv[1])
assert doc["values"][0]["process_description"]["metadata"]["name"] == "echoer"
assert doc["values"][0]["status_code"] == "RUNNING"' "$out"

# kill, then flush
out=$(pm kill -n '^one$')
check "kill shows the process dead, exit 131" grep -Eq "^filed +one .* False +131" <<<"$out"
out=$(pm flush -n '^(one|two)$')
check "flush removes only the dead one" test "$(grep -c '^filed ' <<<"$out")" -eq 1

# errors: one line on stderr, non-zero status
err=$(pm restart -n 'no-such-process' 2>&1 >/dev/null)
status=$?
check "restart with no match exits 4" test "$status" -eq 4
check "the error is one line saying no process matched, and the selection" \
  grep -qx 'drunc-pm: restart: no process matched name ~ "no-such-process"' <<<"$err"
err=$(pm ps -n '(' 2>&1 >/dev/null)
status=$?
check "a broker error exits 1" test "$status" -eq 1
check "a broker error is one line naming the flag and reason" \
  grep -Eq '^drunc-pm: ps failed: DRUNC_EXCEPTION_THROWN: .*\($' <<<"$err"

# Options narrow (issue 13): the same name in two sessions; -s AND -n.
pm boot -n readout-01 -s narrow-a -- sleep 300 >/dev/null
pm boot -n readout-01 -s narrow-b -- sleep 300 >/dev/null
out=$(pm kill -s narrow-a -n readout-01)
check "kill -s -n kills the one process of that session" test "$(grep -Ec '^narrow-a +readout-01 .* False ' <<<"$out")" -eq 1
check "kill -s -n kills nothing else" test "$(wc -l <<<"$out")" -eq 3
out=$(pm ps -n readout-01 -s narrow-b)
check "the other session's process is untouched" grep -Eq '^narrow-b +readout-01 .* True' <<<"$out"
err=$(pm restart -n '^readout-01$' 2>&1 >/dev/null)
status=$?
check "restart of an ambiguous selection exits 4" test "$status" -eq 4
check "restart names the processes it matches" \
  grep -Eq '^drunc-pm: restart: it needs exactly one process; name ~ "\^readout-01\$" matches 2: readout-01 \(session "narrow-a", uuid [0-9a-f-]{36}\), readout-01 \(session "narrow-b", uuid [0-9a-f-]{36}\)$' <<<"$err"
err=$(pm logs -n '^readout-01$' 2>&1 >/dev/null)
check "logs of an ambiguous selection exits 4" test $? -eq 4
out=$(pm restart -s narrow-b -n '^readout-01$')
check "restart -s -n restarts the one process" grep -Eq '^narrow-b +readout-01 .* True' <<<"$out"
err=$(pm kill -s narrow-a -n no-such 2>&1 >/dev/null)
status=$?
check "kill matching nothing exits 4" test "$status" -eq 4
check "kill matching nothing says so, with the selection" \
  grep -qx 'drunc-pm: kill: no process matched session "narrow-a" and name ~ "no-such": nothing killed' <<<"$err"
err=$(pm kill 2>&1 >/dev/null)
check "kill with no selection is a usage error (2)" test $? -eq 2
check "kill with no selection points to terminate" grep -q "terminate" <<<"$err"
err=$(pm flush -s narrow-b 2>&1 >/dev/null)
status=$?
check "flush of living processes only exits 4" test "$status" -eq 4
check "flush of living processes says so" grep -q 'matches only living processes' <<<"$err"
err=$(pm flush -s no-such-session 2>&1 >/dev/null)
check "flush matching nothing exits 4" test $? -eq 4
check "flush matching nothing says so" grep -q 'no process matched session "no-such-session"' <<<"$err"
out=$(pm flush -s narrow-a)
check "flush -s flushes that session's dead process" grep -Eq '^narrow-a +readout-01 .* False' <<<"$out"
for command in ps kill restart flush logs; do
  check "$command --help says how options combine" grep -q "The options narrow" <<<"$("$pm_bin" "$command" --help)"
done

# Fail fast: no broker there, or no such host, is said at once (not after the
# 60 s timeout given here: the message could not come from it).
err=$("$pm_bin" --broker tcp://127.0.0.1:1 --timeout 60 ps 2>&1 >/dev/null)
status=$?
check "nothing listening: exit 3" test "$status" -eq 3
check "nothing listening: one line saying connection refused" \
  grep -qx 'drunc-pm: cannot connect to tcp://127.0.0.1:1: connection refused: nothing listens there (is drunc-broker running, on that port?)' <<<"$err"
err=$("$pm_bin" --broker tcp://no-such-host.invalid:5555 --timeout 60 ps 2>&1 >/dev/null)
status=$?
check "unresolvable host: exit 3" test "$status" -eq 3
check "unresolvable host: says it cannot resolve it" \
  grep -q '^drunc-pm: cannot connect to tcp://no-such-host.invalid:5555: cannot resolve host "no-such-host.invalid"' <<<"$err"
err=$("$pm_bin" --broker 127.0.0.1:5555 ps 2>&1 >/dev/null)
check "an endpoint without tcp:// is a usage error (2)" test $? -eq 2
check "the usage error shows the expected form" grep -q 'expected tcp://HOST:PORT .*did you mean tcp://127.0.0.1:5555' <<<"$err"
err=$("$pm_bin" --broker tcp://localhost ps 2>&1 >/dev/null)
check "an endpoint without a port is a usage error (2)" test $? -eq 2
check "the usage error names the endpoint" grep -q '"tcp://localhost" is not a broker endpoint: expected tcp://HOST:PORT' <<<"$err"
"$pm_bin" boot >/dev/null 2>&1
check "boot without a command is a usage error (2)" test $? -eq 2
"$pm_bin" frobnicate >/dev/null 2>&1
check "an unknown subcommand is a usage error (2)" test $? -eq 2
echo '{"processes": [{"name": "x"}]}' >"$work/bad.json"
err=$(pm boot --file "$work/bad.json" 2>&1 >/dev/null)
check "a bad session file names the problem" grep -q 'processes\[0\]: "commands"' <<<"$err"

# the demo session file from config/ boots as documented
out=$(pm boot --file "$source_dir/config/demo-session.json")
check "the demo session boots its four processes" test "$(grep -c '^demo ' <<<"$out")" -eq 4

# watch: the live feed, as JSON lines. Its subscription takes a moment to be
# live: boot a greeter until its line shows up (an event, not a delay).
exec {watch_out}< <(exec "$pm_bin" --broker "$endpoint" watch --json --session watched)
watch_pid=$!
# A plain watcher of another session: it shows no line of "watched", but the
# broker's broadcasts (each request above and below makes one), timestamped.
exec {plain_out}< <(exec "$pm_bin" --broker "$endpoint" watch --session elsewhere)
plain_pid=$!
seen=no
for attempt in $(seq 1 40); do
  pm boot -n "greeter-$attempt" -s watched -- echo "hello $attempt" >/dev/null
  while IFS= read -r -t 0.5 -u "$watch_out" event; do
    if [[ $event == *'"kind":"log"'*'"line":"hello '* ]]; then seen=yes; break 2; fi
  done
done
check "watch --json shows the log lines of the session" test "$seen" = yes
pm boot -n exits -s watched -- bash -c 'exit 6' >/dev/null
seen=no
while IFS= read -r -t 20 -u "$watch_out" event; do
  if [[ $event == *'"kind":"state"'*'"return_code":6'*'"transition":"exited"'* ]]; then seen=yes; break; fi
done
check "watch --json shows the exit with its code and transition" test "$seen" = yes
kill "$watch_pid" 2>/dev/null
broadcast=""
other=""
for attempt in $(seq 1 40); do
  pm describe >/dev/null
  while IFS= read -r -t 0.5 -u "$plain_out" event; do
    [[ $event == *'[watched/'* ]] && other=$event
    if [[ $event == *'[cli-test/cli-pm] '* ]]; then broadcast=$event; break 2; fi
  done
done
check "watch -s shows the broker's broadcasts whatever the session" test -n "$broadcast"
check "watch lines start with a timestamp" \
  grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} \[cli-test/cli-pm\] [A-Z_]+: ' <<<"$broadcast"
check "watch -s shows no other session's lines" test -z "$other"
kill "$plain_pid" 2>/dev/null

# logs --follow: the last lines, then the new ones, without gap or repeat, until the process ends
pm boot -n counter -s follow -- bash -c 'for i in $(seq 1 40); do echo "line $i"; sleep 0.02; done' >/dev/null
out=$(timeout 60 "$pm_bin" --broker "$endpoint" logs --follow -n '^counter$' --how-far 2)
first=$(head -1 <<<"$out" | cut -d' ' -f2)
expected=$(seq "$first" 40 | sed 's/^/line /')
check "logs --follow prints every line once, in order, to the end" test "$out" = "$expected"
out=$(pm logs -n '^counter$' --grep '^line [23]0$' --how-far 1000)
check "logs --grep keeps only the matching lines" test "$out" = $'line 20\nline 30'

# --json: errors are one JSON object on stderr, stdout stays empty
json_error() {  # json_error STATUS COMMAND PYTHON-ASSERTIONS -- ARGS...: run drunc-pm, check its JSON error
  local want=$1 command=$2 assertions=$3
  shift 4
  local err out status
  out=$("$pm_bin" --json "$@" 2>"$work/json-err")
  status=$?
  err=$(cat "$work/json-err")
  check "--json $command: exit $want" test "$status" -eq "$want"
  check "--json $command: nothing on stdout" test -z "$out"
  check "--json $command: the error is a JSON object" "$python" -c '
import json, sys
doc = json.loads(sys.argv[1])
assert doc["exit_code"] == int(sys.argv[2]) and doc["command"] == sys.argv[3], doc
'"$assertions" "$err" "$want" "$command"
}
json_error 4 kill 'assert "no process matched" in doc["error"]' -- --broker "$endpoint" kill -s narrow-a -n no-such
json_error 1 ps 'assert doc["flag"] == "DRUNC_EXCEPTION_THROWN" and doc["text"]' -- --broker "$endpoint" ps -n '('
json_error 3 ps 'assert "connection refused" in doc["error"]' -- --broker tcp://127.0.0.1:1 ps
json_error 2 drunc-pm 'assert "--frobnicate" in doc["error"]' -- ps --frobnicate
json_error 2 ps 'assert "tcp://HOST:PORT" in doc["error"]' -- --broker localhost:5555 ps

# Colour: --color=always|never, NO_COLOR, and auto = a terminal (script gives one)
esc=$'\033['
out=$(pm ps -s narrow-b --color=always)
check "ps --color=always colours the status" grep -qF "${esc}32mTrue${esc}0m" <<<"$out"
out=$(pm ps -s narrow-b)
check "ps without a terminal has no colour" test "$(grep -cF "$esc" <<<"$out")" -eq 0
out=$(env -u NO_COLOR script -qec "$pm_bin --broker $endpoint ps -s narrow-b" /dev/null </dev/null)
check "ps on a terminal colours the status" grep -qF "${esc}32mTrue" <<<"$out"
out=$(NO_COLOR=1 script -qec "$pm_bin --broker $endpoint ps -s narrow-b" /dev/null </dev/null)
check "ps on a terminal with NO_COLOR has no colour" test "$(grep -cF "$esc" <<<"$out")" -eq 0
out=$(NO_COLOR=1 script -qec "$pm_bin --broker $endpoint ps -s narrow-b --color=always" /dev/null </dev/null)
check "--color=always wins over NO_COLOR" grep -qF "${esc}32mTrue" <<<"$out"
out=$(env -u NO_COLOR script -qec "$pm_bin --broker $endpoint ps -s narrow-b --color=never" /dev/null </dev/null)
check "--color=never on a terminal has no colour" test "$(grep -cF "$esc" <<<"$out")" -eq 0
"$pm_bin" ps --color=sometimes >/dev/null 2>&1
check "--color takes auto, always or never only (2)" test $? -eq 2

# Client-side checks before a boot: duplicate names, missing local files
err=$(pm boot -n readout-01 -s narrow-b -- sleep 300 2>&1 >/dev/null)
check "a duplicate name in a session is refused (1)" test $? -eq 1
check "the refusal names the process that has the name" \
  grep -Eq '^drunc-pm: boot refused: session "narrow-b" already has "readout-01": a running process \(uuid [0-9a-f-]{36}\)' <<<"$err"
out=$(pm boot --allow-duplicates -n readout-01 -s narrow-b -- sleep 300)
check "--allow-duplicates boots it" grep -Eq '^narrow-b +readout-01 .* True' <<<"$out"
cat >"$work/dup.json" <<JSON
{"session": "dup", "processes": [{"name": "x", "commands": [["sleep", "300"]]}, {"name": "x", "commands": [["sleep", "300"]]}]}
JSON
err=$(pm boot -f "$work/dup.json" 2>&1 >/dev/null)
check "a session file naming a process twice is refused (1)" test $? -eq 1
check "the refusal says which" grep -q 'session "dup" already has "x": process 1 of this boot' <<<"$err"
err=$(pm boot -n ghost -s checks -- /no/such/executable 2>&1 >/dev/null)
check "a missing local executable is refused (1)" test $? -eq 1
check "the refusal says it does not exist" \
  grep -qx 'drunc-pm: boot refused: "ghost": executable /no/such/executable does not exist on this machine, where the broker runs it' <<<"$err"
err=$(pm boot -n ghost -s checks -- no-such-command-zz 2>&1 >/dev/null)
check "a command not on PATH is refused" grep -q '"ghost": command "no-such-command-zz" is not found on PATH' <<<"$err"
err=$(pm boot -n ghost -s checks -d /no/such/dir -- true 2>&1 >/dev/null)
check "a missing execution directory is refused" grep -q '"ghost": execution directory /no/such/dir does not exist' <<<"$err"
err=$(pm boot -n ghost -s checks -d "$work" -- ./missing.sh 2>&1 >/dev/null)
check "a missing executable relative to the directory is refused" grep -q "executable $work/./missing.sh does not exist" <<<"$err"
err=$(pm boot -n ghost -s checks -- "$work" 2>&1 >/dev/null)
check "a directory as executable is refused" grep -q "executable $work is a directory" <<<"$err"
out=$(pm ps -s checks)
check "nothing was booted by the refused boots" test "$(wc -l <<<"$out")" -eq 2
out=$(pm boot -n builtin -s checks -- echo hi)
check "a bash builtin or a command on PATH is not refused" grep -q '^checks  *builtin' <<<"$out"

# A session boot that partly fails: says what is left running, or --atomic kills it
for session in partial atomic partial-json; do
  cat >"$work/$session.json" <<JSON
{"session": "$session", "processes": [
  {"name": "ok-1", "commands": [["sleep", "300"]]},
  {"name": "bad", "env": {"1BAD": "x"}, "commands": [["sleep", "300"]]},
  {"name": "ok-2", "commands": [["sleep", "300"]]}]}
JSON
done
err=$(pm boot -f "$work/partial.json" 2>&1 >/dev/null)
check "a partly failed session boot exits 1" test $? -eq 1
check "it names the failed boot" grep -q '^drunc-pm: boot failed: bad: ' <<<"$err"
check "it says what is left running" \
  grep -qx 'drunc-pm: 2 of 3 processes booted and left running: ok-1 and ok-2 (--atomic kills them when any boot fails)' <<<"$err"
out=$(pm ps -s partial)
check "those are left running" test "$(grep -c ' True ' <<<"$out")" -eq 2
err=$(pm boot --atomic -f "$work/atomic.json" 2>&1 >/dev/null)
check "an --atomic session boot that partly fails exits 1" test $? -eq 1
check "--atomic says it killed what booted" grep -qx 'drunc-pm: --atomic: killed the 2 processes booted: ok-1 and ok-2' <<<"$err"
out=$(pm ps -s atomic)
check "--atomic leaves nothing running" test "$(grep -c ' True ' <<<"$out")" -eq 0
out=$(pm --json boot -f "$work/partial-json.json" 2>"$work/json-err")
check "--json: a partly failed session boot exits 1" test $? -eq 1
check "--json: the processes booted are the answer on stdout" "$python" -c '
import json, sys
assert sorted(p["process_description"]["metadata"]["name"] for p in json.loads(sys.argv[1])["values"]) == ["ok-1", "ok-2"]' "$out"
check "--json: each failure and what is left running are JSON objects on stderr" "$python" -c '
import json, sys
errors = [json.loads(line) for line in open(sys.argv[1])]
assert [e["exit_code"] for e in errors] == [1, 1] and all(e["command"] == "boot" for e in errors), errors
assert errors[0]["process"] == "bad" and errors[0]["flag"] and errors[0]["text"], errors[0]
assert sorted(p["name"] for p in errors[1]["left_running"]) == ["ok-1", "ok-2"], errors[1]
assert all(p["session"] == "partial-json" and len(p["uuid"]) == 36 for p in errors[1]["left_running"])' "$work/json-err"

# terminate: on no terminal it needs --yes; on a terminal it asks
err=$(pm terminate </dev/null 2>&1 >/dev/null)
check "terminate off a terminal without --yes is refused (2)" test $? -eq 2
check "the refusal says to give --yes" grep -q 'give --yes' <<<"$err"
out=$(printf 'n\n' | script -qec "$pm_bin --broker $endpoint terminate" /dev/null)
status=$?
check "terminate on a terminal asks first" grep -q 'Proceed? \[y/N\]' <<<"$out"
check "answering no cancels it (1)" test "$status" -eq 1
check "answering no says so" grep -q 'terminate cancelled: nothing killed' <<<"$out"
check "answering no kills nothing" grep -q ' True ' <<<"$(pm ps)"
out=$(pm terminate --yes)
check "terminate --yes leaves nothing alive" test "$(grep -c ' True ' <<<"$out")" -eq 0

# keygen, and a CURVE broker reached with --certificate/--server-key, the environment and a session file
keys=$work/keys
mkdir -p "$keys/clients"
( cd "$keys" && "$pm_bin" keygen server >/dev/null && "$pm_bin" keygen ops --user olga --role operator --sessions secure \
  >/dev/null && "$pm_bin" keygen stranger --role admin >/dev/null )
check "keygen writes a public and a secret certificate" test -f "$keys/ops.key" -a -f "$keys/ops.key_secret"
check "keygen makes the secret certificate private" test "$(stat -c %a "$keys/ops.key_secret")" = 600
check "keygen writes the metadata" grep -q 'role = "operator"' "$keys/ops.key"
cp "$keys/ops.key" "$keys/clients/"
cat >"$work/secure.json" <<JSON
{"name": "secure-cli-pm", "control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*",
 "security": {"mode": "curve", "server_certificate": "$keys/server.key_secret", "client_certificates": "$keys/clients"}}
JSON
exec {secure_out}< <(exec "$broker_bin" --config "$work/secure.json" 2>&1)
secure_pid=$!
secure_endpoint=""
while IFS= read -r -t 30 -u "$secure_out" line; do
  if [[ $line =~ serving\ on\ (tcp://[0-9.]+:[0-9]+) ]]; then secure_endpoint=${BASH_REMATCH[1]}; break; fi
done
cat <&"$secure_out" >/dev/null &
spm() { "$pm_bin" --broker "$secure_endpoint" "$@"; }
out=$(spm --certificate "$keys/ops.key_secret" --server-key "$keys/server.key" boot -n guarded -s secure -- sleep 300)
check "an operator boots in its session with --certificate and --server-key" grep -q "^secure  *guarded" <<<"$out"
out=$(DRUNC_CERTIFICATE=$keys/ops.key_secret DRUNC_SERVER_KEY=$keys/server.key spm ps)
check "the keys may come from the environment" grep -q "guarded" <<<"$out"
cat >"$work/secure-session.json" <<JSON
{"session": "secure", "certificate": "keys/ops.key_secret", "server_key": "keys/server.key",
 "processes": [{"name": "from-file", "commands": [["sleep", "300"]]}]}
JSON
out=$(spm boot -f "$work/secure-session.json")
check "the keys may come from the session file" grep -q "from-file" <<<"$out"
err=$(spm --certificate "$keys/ops.key_secret" --server-key "$keys/server.key" boot -n elsewhere -s other -- true 2>&1)
check "an operator is refused another session, with rc 1" test $? -eq 1
check "the refusal names user, command and session" grep -q 'NOT_EXECUTED_NOT_AUTHORISED: olga (operator) may not boot processes of session "other"' <<<"$err"
start=$(date +%s)
err=$(spm -t 30 --certificate "$keys/stranger.key_secret" --server-key "$keys/server.key" ps 2>&1)
rc=$?
check "an unlisted key is reported as refused, rc 1" test $rc -eq 1
check "the refusal says the broker refused the key" grep -q "refused this key" <<<"$err"
check "the refusal comes well within the timeout" test $(($(date +%s) - start)) -lt 15
err=$(spm -t 30 ps 2>&1)
check "a client without keys is told the broker requires CURVE" grep -q "requires CURVE" <<<"$err"
spm --certificate "$keys/ops.key_secret" --server-key "$keys/server.key" kill -s secure >/dev/null
kill "$secure_pid"; wait "$secure_pid" 2>/dev/null

# A broker that advertises an event feed nobody serves: watch and logs
# --follow say so at once (exit 3), not after a wait.
cat >"$work/misadvertised.json" <<JSON
{"name": "misadvertised", "control_endpoint": "tcp://127.0.0.1:*", "events_endpoint": "tcp://127.0.0.1:*",
 "events_advertised_endpoint": "tcp://127.0.0.1:1"}
JSON
exec {mis_out}< <(exec "$broker_bin" --config "$work/misadvertised.json" 2>&1)
mis_pid=$!
mis_endpoint=""
while IFS= read -r -t 30 -u "$mis_out" line; do
  if [[ $line =~ serving\ on\ (tcp://[0-9.]+:[0-9]+) ]]; then mis_endpoint=${BASH_REMATCH[1]}; break; fi
done
cat <&"$mis_out" >/dev/null &
err=$(timeout 60 "$pm_bin" --broker "$mis_endpoint" watch 2>&1 >/dev/null)
check "watch of a feed nobody serves exits 3" test $? -eq 3
check "watch says it cannot connect to the feed" grep -q '^drunc-pm: cannot connect to tcp://127.0.0.1:1: connection refused' <<<"$err"
"$pm_bin" --broker "$mis_endpoint" boot -n talker -- sleep 300 >/dev/null
err=$(timeout 60 "$pm_bin" --broker "$mis_endpoint" logs -f -n talker 2>&1 >/dev/null)
check "logs --follow of a feed nobody serves exits 3" test $? -eq 3
check "logs --follow says it cannot connect to the feed" grep -q '^drunc-pm: cannot connect to tcp://127.0.0.1:1: connection refused' <<<"$err"
kill "$mis_pid"; wait "$mis_pid" 2>/dev/null

# watch ends when the broker shuts down, and says so (even showing logs only)
exec {last_out}< <(exec "$pm_bin" --broker "$endpoint" watch --logs 2>"$work/watch-err")
last_pid=$!
live=no
for attempt in $(seq 1 40); do
  pm boot -n "live-$attempt" -s ending -- echo "live $attempt" >/dev/null
  while IFS= read -r -t 0.5 -u "$last_out" event; do
    if [[ $event == *"[ending/live-"* ]]; then live=yes; break 2; fi
  done
done
check "watch --logs is live" test "$live" = yes
kill "$broker_pid"
broker_pid=""
ended=no
while true; do  # until end of file (the watcher exited: status 1) or 60 s of silence (status > 128)
  IFS= read -r -t 60 -u "$last_out" event
  read_status=$?
  [ "$read_status" -eq 0 ] || break
done
[ "$read_status" -eq 1 ] && ended=yes
wait "$last_pid"
status=$?
check "watch ends when the broker shuts down" test "$ended" = yes
check "watch exits 0 then" test "$status" -eq 0
check "watch says the broker shut down" grep -qx -- '-- the broker shut down: watch ends' "$work/watch-err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

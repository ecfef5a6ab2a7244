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
check "ps filters by session OR name" test "$(grep -Ec '^(filed) ' <<<"$out")" -eq 3
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
check "restart with no match exits 1" test "$status" -eq 1
check "the error is one line naming the flag and reason" \
  grep -qx "drunc-pm: restart failed: DRUNC_EXCEPTION_THROWN: restart needs a query matching exactly one process; it matches 0" <<<"$err"
err=$("$pm_bin" --broker tcp://127.0.0.1:1 --timeout 0.5 ps 2>&1 >/dev/null)
status=$?
check "no broker: exit 3" test "$status" -eq 3
check "no broker: one line saying so" test "$(wc -l <<<"$err")" -eq 1
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
seen=no
for attempt in $(seq 1 40); do
  pm boot -n greeter -s watched -- echo "hello $attempt" >/dev/null
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

# logs --follow: the last lines, then the new ones, without gap or repeat, until the process ends
pm boot -n counter -s follow -- bash -c 'for i in $(seq 1 40); do echo "line $i"; sleep 0.02; done' >/dev/null
out=$(timeout 60 "$pm_bin" --broker "$endpoint" logs --follow -n '^counter$' --how-far 2)
first=$(head -1 <<<"$out" | cut -d' ' -f2)
expected=$(seq "$first" 40 | sed 's/^/line /')
check "logs --follow prints every line once, in order, to the end" test "$out" = "$expected"
out=$(pm logs -n '^counter$' --grep '^line [23]0$' --how-far 1000)
check "logs --grep keeps only the matching lines" test "$out" = $'line 20\nline 30'

# terminate kills everything
out=$(pm terminate)
check "terminate leaves nothing alive" test "$(grep -c ' True ' <<<"$out")" -eq 0

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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

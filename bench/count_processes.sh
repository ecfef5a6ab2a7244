#!/usr/bin/env bash
# Counts the processes created (fork, vfork, clone without CLONE_THREAD) and
# the programs exec'd by one drunc-bench run, on its own side (drunc-bench and
# all it starts: the broker in-process, ssh clients and masters) and on the
# test sshd's side (the listener and all it starts), with strace -f: exact,
# though it slows the run down (so only counts come from here, no times).
# Run with the test sshd up, under the SSH test lock:
#   flock /tmp/drunc-ssh-tests.lock bench/count_processes.sh STARTS DRUNC_BENCH_ARGS...
# e.g. bench/count_processes.sh 100 ssh-one-host --methods drunc -n 100 -r 1
set -euo pipefail
cd "$(dirname "$0")/.."
starts=$1
shift
bench=${DRUNC_BENCH:-build-bench/bench/drunc-bench}
state=${DRUNC_TEST_SSHD_STATE:-/tmp/drunc-test-sshd}
out=$(mktemp -d /tmp/drunc-bench-strace-XXXXXX)
trap 'rm -rf "$out"' EXIT
calls=clone,clone3,fork,vfork,execve
listener=$(cat "$state/sshd.pid" 2>/dev/null || true)
if [ -n "$listener" ]; then
  strace -f -qq -e trace=$calls -o "$out/server" -p "$listener" &
  tracer=$!
  sleep 1  # attached
fi
strace -f -qq -e trace=$calls -o "$out/client" taskset -c 0 "$bench" "$@" >&2
if [ -n "$listener" ]; then
  sleep 2  # the last connections close
  kill -INT "$tracer"
  wait "$tracer" || true
fi
count() {  # FILE: processes created, programs exec'd (successfully), by name
  local file=$1 side=$2
  [ -f "$file" ] || return 0
  /usr/bin/python3 - "$file" "$side" "$starts" <<'PY'
import collections, re, sys
path, side, starts = sys.argv[1], sys.argv[2], int(sys.argv[3])
created = 0
pending = {}  # pid -> program of an execve not finished yet
programs = collections.Counter()
for line in open(path, errors="replace"):
    m = re.match(r"(\d+)\s+(.*)$", line)
    if not m:
        continue
    pid, call = m[1], m[2]
    if re.match(r"(clone3?|v?fork)\(", call) and "CLONE_THREAD" not in call:
        created += 1
    e = re.match(r'execve\("([^"]*)"', call)
    if e:
        if call.rstrip().endswith("= 0"):
            programs[e[1]] += 1
        elif "<unfinished" in call:
            pending[pid] = e[1]
    if call.startswith("<... execve resumed>") and call.rstrip().endswith("= 0") and pid in pending:
        programs[pending.pop(pid)] += 1
execs = sum(programs.values())
print(f"{side}: {created} processes created ({created / starts:.2f} per start), "
      f"{execs} programs exec'd ({execs / starts:.2f} per start)")
for program, count in programs.most_common():
    print(f"    {count / starts:5.2f} per start  {program}  ({count})")
PY
}
echo "starts: $starts ($*)"
count "$out/client" "drunc-bench side"
count "$out/server" "sshd side"

#!/usr/bin/env bash
# Runs every benchmark scenario, each against its baseline in the same run,
# and rewrites docs/PERFORMANCE.md. Needs root (the SSH scenarios start the
# test sshd of tests/fixtures/sshd.sh on 127.0.0.2-5). Takes about 15 minutes:
# the baseline's kill alone waits 0.5 s per process, as the method it measures.
#   bench/run.sh [REPETITIONS]   (default 5; the median is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
repetitions=${1:-5}
scripts/install-deps.sh >/dev/null
BUILD_DIR=build-bench scripts/build.sh -DDRUNC_BUILD_TESTS=OFF >/dev/null
tests/fixtures/sshd.sh start >/dev/null
trap 'tests/fixtures/sshd.sh stop' EXIT

bench=build-bench/bench/drunc-bench
rows=$(mktemp)
for scenario in ssh-one-host ssh-four-hosts; do
  "$bench" "$scenario" --count 100 --repetitions "$repetitions" >>"$rows"
done

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  cat <<HEADER
# Performance

Figures from one run of \`bench/run.sh $repetitions\` on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu),
$(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"). Each figure is the median of
$repetitions repetitions (min-max in brackets); each baseline ran in the same run, alternating
with drunc-zmq, so only the ratios are comparable across runs and machines.

## Boot and kill over SSH

100 processes (\`sh -c 'echo ready; exec sleep 300'\`) on one host, and spread
over four hosts (127.0.0.2-5, one private OpenSSH server with its default
MaxSessions 10 and MaxStartups 10:30:100), from a broker that has no
connection yet, as at the start of a run.
- drunc-zmq: the 100 boot requests pipelined on one client socket; "boot" ends
  when every answer (RUNNING) is in; then, once each process has printed its
  first line, one \`terminate\`, which ends when every process is DEAD.
- Baseline, the Python implementation's method: one \`ssh\` client per process,
  started one after another, each waited for until its remote command runs and
  kept open; kill: SIGQUIT to each ssh client one after another, each followed
  by a fixed 0.5 s wait (then SIGKILL if needed).

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
HEADER
  cat "$rows"
  cat <<'FOOTER'

Targets (issue 3): at least 10 times faster than the baseline for 100
processes, and all 100 killed in under 2 s.
FOOTER
} >docs/PERFORMANCE.md
rm -f "$rows"
echo "bench: wrote docs/PERFORMANCE.md"

#!/usr/bin/env bash
# Counts the processes each start creates, and where the CPU goes, for one
# drunc-bench run: records it with `perf record -a` (cpu-clock samples at
# 999 Hz per core, and the fork and exec tracepoints), then
# bench/process_tree.py splits what drunc-bench started (client side) from
# what the test sshd started (server side), leaving other processes out.
# drunc-bench runs on core 0 (taskset), as in docs/PERFORMANCE.md. Run it
# with the test sshd up, under the SSH test lock:
#   flock /tmp/drunc-ssh-tests.lock bench/ssh_profile.sh STARTS DRUNC_BENCH_ARGS...
# e.g. bench/ssh_profile.sh 100 ssh-one-host --methods drunc -n 100 -r 1
#      bench/ssh_profile.sh 100 scale --no-baseline -n 100 -r 1
set -euo pipefail
cd "$(dirname "$0")/.."
starts=$1
shift
bench=${DRUNC_BENCH:-build-bench/bench/drunc-bench}
state=${DRUNC_TEST_SSHD_STATE:-/tmp/drunc-test-sshd}
listener=$(cat "$state/sshd.pid" 2>/dev/null || echo 0)
data=$(mktemp /tmp/drunc-bench-perf-XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -q -a -m 16M -F 999 -e cpu-clock -e task:task_newtask -e sched:sched_process_exec -o "$data" -- \
  taskset -c 0 "$bench" "$@"
/usr/bin/python3 bench/process_tree.py "$data" /drunc-bench "$listener" "$starts"

#!/usr/bin/env bash
# Runs every benchmark scenario, each against its baseline in the same run,
# and rewrites docs/PERFORMANCE.md. Needs root (the SSH scenarios start the
# test sshd of tests/fixtures/sshd.sh on 127.0.0.2-5). Takes about an hour on
# a loaded 2-core machine, most of it the SSH baselines (the sequential one's
# kill waits 0.5 s per process, as the method it measures does); the soak and
# fairness add about 4 minutes. Run it on an
# otherwise idle machine; where several people share the test sshd, under
# `flock /tmp/drunc-ssh-tests.lock bench/run.sh`.
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
requests=$(mktemp)
scale=$(mktemp)
feed=$(mktemp)
curve=$(mktemp)
soak=$(mktemp)
fairness=$(mktemp)
# Both sides pinned as in docs/PERFORMANCE.md: the bench (and the broker it
# runs in-process, and the ssh clients) on core 0, the test sshd on core 1.
taskset -a -p -c 1 "$(cat /tmp/drunc-test-sshd/sshd.pid)" >/dev/null
for scenario in ssh-one-host ssh-four-hosts; do
  taskset -c 0 "$bench" "$scenario" --count 100 --repetitions "$repetitions" --sequential-kill >>"$rows"
done
taskset -c 0 "$bench" ssh-scale --count 1000 --repetitions "$repetitions" >>"$rows"
"$bench" requests --repetitions "$repetitions" >"$requests"
"$bench" scale --count 1000 --repetitions "$repetitions" >"$scale"
"$bench" feed --count 4 --lines 100000 --size 100 --repetitions "$repetitions" >"$feed"
"$bench" requests --curve --repetitions "$repetitions" >"$curve"
"$bench" feed --curve --count 4 --lines 100000 --size 100 --repetitions "$repetitions" >>"$curve"
# The soak's exit status says whether it met its target; the table says it too.
"$bench" soak --cycles 10000 --ssh-cycles 2000 --concurrency 50 >"$soak" || true
# The broker on core 1, the two clients on core 0.
taskset -c 0 "$bench" fairness --broker-cpus 1 --repetitions "$repetitions" >"$fairness"

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  cat <<HEADER
# Performance

Figures from one run of \`bench/run.sh $repetitions\` on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu),
$(free -g | awk '/Mem:/ {print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"). Each figure is the median of
$repetitions repetitions (min-max in brackets); each baseline ran in the same run, alternating
with drunc-zmq, so only the ratios are comparable across runs and machines.

## Boot and kill over SSH

100 processes (\`sh -c 'echo ready; exec sleep 2999'\`) on one host, and spread
over four hosts (127.0.0.2-5, one private OpenSSH server with its default
MaxSessions 10 and MaxStartups 10:30:100), from a broker that has no
connection yet, as at the start of a run.
- drunc-zmq: the 100 boot requests pipelined on one client socket; "boot" ends
  when every answer (RUNNING) is in; then, once each process has printed its
  first line, one \`terminate\`, which ends when every process is DEAD.
- Baselines (bench/ssh_boot.cpp), each process's output teed to its log
  file as drunc-zmq's script does: the Python implementation's method (one
  \`ssh\` client per process, one after another; kill: SIGQUIT to each
  client, 0.5 s apart); ssh clients in parallel, 10 handshaking at a time
  (MaxStartups); ControlMaster, one master per 10 processes (MaxSessions),
  opened 10 at a time, its clients started as soon as it is up. ssh-scale:
  1,000 processes over the four hosts, drunc-broker as a program (RSS,
  threads), ControlMaster beside it.

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
HEADER
  grep '^|' "$rows"
  echo
  grep '^note: ' "$rows" | sed 's/^note: /- /' || true
  cat <<'MIDDLE'

Targets (issue 3): at least 10 times faster than the baseline for 100
processes, and all 100 killed in under 2 s.

## Request round trips

A broker with 100 registered processes (`sleep`), the client library's
DEALER over TCP loopback. Latency: 2,000 requests one after another (after
100 to warm up), percentiles per repetition. Throughput: each client in its
own thread keeps 64 requests in flight for 1 s. Baseline: a bare ZeroMQ
ROUTER in one thread answering the same requests from the same clients with
the very bytes the broker answers (so the same sizes: ~0.2 kB for one
process, ~20 kB for 100). CPU per 1,000 requests: the CPU time (user +
system, from /proc/self/task) of the thread that answers, the broker's or
the echo's, over the 16-client throughput run, divided by the requests
answered. Unless a row says otherwise, nobody subscribes to the event feed,
so the broker builds no broadcast (section "Events" of docs/PROTOCOL.md); the
last two rows add a subscriber to every event.

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
MIDDLE
  cat "$requests"
  cat <<'MIDDLE'

Targets (issue 5): one-process `ps` throughput at 16 clients at least 50% of
the echo's; p50 latency at most 1.5 times the echo's.

## Scale: 1,000 local processes

1,000 `sh -c 'echo ready; exec sleep 300'` booted from one client (pipelined),
until every answer is in; memory is the growth of the process's resident
set while the broker holds them (the bench runs the broker in-process);
then one `ps` of all, and one `terminate` once each has printed its line.
Baseline: `posix_spawn` of the same 1,000 `sh` directly, then SIGKILL and
`waitpid` of all: what the machine itself needs.

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
MIDDLE
  cat "$scale"
  cat <<'FOOTER'

Targets (issue 5): boot of 1,000 local processes in under 3 s, broker memory
under 64 MiB, terminate in under 3 s.

## Event feed

4 local processes (`drunc-bench print`) each write 100,000 lines of 100 bytes
as fast as they can, one `write` per line, each line starting with the
CLOCK_MONOTONIC time it was printed; 1 or 4 subscribers (threads of the bench,
one SUB socket each, `drunc::client::Subscriber`) read the log and state
topics, parse each LogLine, check `topic_sequence` and take the time from
print to receipt. Lines per second: lines a subscriber received, on average,
over the time from the boots until the last line arrived. Lost: lines some
subscriber never received (gaps, or the end of the stream), over all
subscribers. CPU: the broker and local-launcher threads (reading the pipes,
splitting lines, building and publishing events), per 10,000 lines. The last
case paces one process at 10,000 lines per second, far below what the
machine carries, so that the latency is the path's and not a queue's.
Baseline, in the same run: one thread building the same events (LogLine and
EventMeta of the same sizes, stamped as they are built) and sending them on a
bare ZeroMQ PUB with the same high-water mark (100,000) to the same
subscriber code.

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
FOOTER
  cat "$feed"
  cat <<'FOOTER'

Target (issue 4): at least 200,000 lines per second end to end, nothing lost by
a subscriber that keeps up.

## With CURVE security

The same methods with `security.mode: "curve"` (docs/CONFIG.md): the broker
reads its server certificate and a directory with one admitted client
certificate (role admin); the client library's DEALERs and Subscribers
connect with that client's keys. Baselines, in the same run: the same bare
ROUTER echo and bare PUB, made CURVE servers with the same server key, to
the same clients with the same keys; they have no ZAP handler (the broker's
answers only the handshake, once per connection). `ps` of one process:
latency with 1 in flight, throughput and CPU of the answering thread at 16
clients x 64 in flight, as in "Request round trips" (`drunc-bench requests
--curve`). Feed: 4 processes flooding, one subscriber, as in "Event feed"
(`drunc-bench feed --curve`). ZeroMQ's I/O threads encrypt and decrypt
every frame (an event is three), so the CPU of the answering or publishing
thread leaves CURVE's own cost out, on both sides.

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
FOOTER
  cat "$curve"
  cat <<'FOOTER'

Targets (issue 10): with CURVE, one-process `ps` throughput at 16 clients at
least 50% of the CURVE echo's, p50 latency at most 1.5 times the echo's; feed
lines per second at least 80% of the bare CURVE PUB's.

FOOTER
  cat <<'FOOTER'
## Soak

`drunc-bench soak --cycles 10000 --ssh-cycles 2000 --concurrency 50`:
drunc-broker runs as a program of its own (default configuration but for
ipc:// endpoints in a temporary directory, log level warn, `log_ring_lines`
100), so that /proc/PID shows its resident memory (VmRSS), open file
descriptors (/proc/PID/fd), threads and children. One client keeps 50 cycles
in flight; a cycle is: boot `sh -c 'echo ready; exec sleep 86399'` (names
soak-0 to soak-49, reused), wait for its `ready` line on the event feed
(one subscriber to `log/soak/`), kill it, flush it. Locally, then over SSH
to the test sshd (tests/fixtures/sshd.sh: 127.0.0.2-5, process i on host
i mod 4). Every twentieth of the run the client lets the cycles in flight
end, waits until the broker has no child left, and samples. Warm-up: the
first tenth of the cycles. "Processes left running" counts every
`sleep 86399` on the machine (the SSH hosts are loopback addresses of it).

| run | quantity | at start | after warm-up | at end | growth after warm-up | target | result |
|---|---|---|---|---|---|---|---|
FOOTER
  grep '^|' "$soak" || true
  echo
  grep '^note: ' "$soak" | sed 's/^note: /- /' || true
  cat <<'FOOTER'

Target (issue 11): flat after warm-up: RSS growth under 1 MiB, open fds and
threads constant, no zombie.

## Fairness

`taskset -c 0 drunc-bench fairness --broker-cpus 1`: drunc-broker as a
program on core 1 (ipc:// endpoints, 100 registered `sleep` processes); on
core 0 a well-behaved client sends `ps` of one process, one at a time, with
a 1 ms pause after each answer, 2,000 measured after 100 to warm up; its
p50 and p99 while another client floods, against the same client with no
flood, alternating within each repetition. Floods: "greedy" keeps 64 `ps`
of all 100 (~20 kB answers) in flight and reads each answer; "deaf" sends
`ps` of one process as fast as its socket takes them and never reads (its
receive queue holds 100 messages, so the broker's queue for it fills).

| scenario | quantity | drunc-zmq | baseline | ratio |
|---|---|---|---|---|
FOOTER
  grep '^|' "$fairness" || true
  echo
  grep '^note: ' "$fairness" | sed 's/^note: /- /' || true
  echo
  cat bench/analysis.md
} >docs/PERFORMANCE.md
rm -f "$rows" "$requests" "$scale" "$feed" "$curve" "$soak" "$fairness"
echo "bench: wrote docs/PERFORMANCE.md"

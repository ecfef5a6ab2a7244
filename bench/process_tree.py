#!/usr/bin/python3
"""Counts the processes and execs, and the CPU samples, of two process trees
in a `perf record -a` of the events task:task_newtask,
sched:sched_process_exec and cpu-clock (bench/ssh_profile.sh makes one):
the client side (drunc-bench and all it starts: the in-process broker, the
ssh clients and masters) and the server side (the test sshd's listener and
all it starts: per-connection sshd processes, login shells, wrappers, tee,
the commands). Other agents' processes on the machine are left out: only
descendants of the two roots count.

    process_tree.py PERF_DATA BENCH_PROGRAM_SUFFIX SSHD_LISTENER_PID STARTS

Prints, per side: new processes (threads excluded) and execs, in total and
per start; the programs exec'd, most first; and the CPU samples by command
name and by symbol, most first. On the loaded 2-core machine of
docs/PERFORMANCE.md about 15% of the fork events were missing from the
recording (and with them their subtrees), so the counts and the server
side's samples are lower bounds: bench/count_processes.sh gives exact counts.
"""
import collections
import re
import subprocess
import sys

CLONE_THREAD = 0x10000


def main():
    data, bench_suffix, listener, starts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,trace,ip,sym,dso", "--ns"],
        capture_output=True, text=True, errors="replace").stdout
    side = {listener: "server"} if listener > 0 else {}
    forks = collections.Counter()
    threads = collections.Counter()
    execs = collections.Counter()
    programs = {"client": collections.Counter(), "server": collections.Counter()}
    samples = {"client": collections.Counter(), "server": collections.Counter()}
    symbols = {"client": collections.Counter(), "server": collections.Counter()}
    total_samples = collections.Counter()
    line_re = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+(?P<time>[\d.]+):\s+(?P<rest>.*)$")
    for line in script.splitlines():
        match = line_re.match(line)
        if not match:
            continue
        pid = int(match["pid"])
        rest = match["rest"]
        if "task:task_newtask:" in rest:
            child = int(re.search(r" pid=(\d+)", rest)[1])
            flags = int(re.search(r"clone_flags=([0-9a-fA-F]+)", rest)[1], 16)
            if pid in side:
                if flags & CLONE_THREAD:
                    threads[side[pid]] += 1
                else:
                    side[child] = side[pid]
                    forks[side[pid]] += 1
            continue
        if "sched:sched_process_exec:" in rest:
            filename = re.search(r"filename=(\S+)", rest)[1]
            if pid not in side and filename.endswith(bench_suffix) and "client" not in side.values():
                side[pid] = "client"
            if pid in side:
                execs[side[pid]] += 1
                programs[side[pid]][filename] += 1
            continue
        if "cpu-clock" in rest:
            total_samples["all"] += 1
            if pid in side:
                s = side[pid]
                samples[s][match["comm"]] += 1
                fields = rest.split()
                # cpu-clock:  IP SYMBOL+OFF (DSO)
                sym = " ".join(fields[2:-1]) if len(fields) > 3 else "?"
                sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
                symbols[s][f"{sym} {fields[-1]}"] += 1
    print(f"starts: {starts}")
    for s in ("client", "server"):
        print(f"\n== {s} side: {forks[s]} new processes ({forks[s] / starts:.2f} per start), "
              f"{execs[s]} execs ({execs[s] / starts:.2f} per start), {threads[s]} new threads")
        for program, count in programs[s].most_common(12):
            print(f"   exec {count:6d}  {count / starts:5.2f}/start  {program}")
        n = sum(samples[s].values())
        print(f"   CPU samples: {n} ({n / max(1, total_samples['all']):.0%} of the machine's in the recording)")
        for comm, count in samples[s].most_common(12):
            print(f"   cpu {count:6d}  {count / max(1, n):5.1%}  {comm}")
        for sym, count in symbols[s].most_common(15):
            print(f"   sym {count:6d}  {count / max(1, n):5.1%}  {sym}")


if __name__ == "__main__":
    main()

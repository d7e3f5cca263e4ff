#!/usr/bin/env python3
"""Where the whole machine's CPU went during a system-wide `perf record -a` (bench/profile).

Usage: perf script -i perf.data -F comm,pid,tid,cpu,time,period,ip,sym,dso | perfsplit.py [--windows FILE --offset S] NCPU [PID...]

PIDs are the measured client processes (rbuild, or the docker CLI of buildx); other processes
named rbuild (someone else's tests on the shared engine) count as "other".

Groups samples by process (thread group id), then names the process by its threads' comms:
  rbuild client      a given PID whose threads include "rbuild" (workers are "tokio-runtime-w")
  buildx client      a given PID (the docker CLI) and "docker-buildx" (the plugin it runs)
  dockerd            dockerd (embedded BuildKit)
  containerd         containerd
  shim/runc          containerd-shim*, runc* (containers of RUN steps)
  registry           docker-registry
  idle               swapper (pid 0): CPUs with nothing to run
  kernel threads     kworker, ksoftirqd, ... (work the kernel defers, e.g. writeback)
  other              anything else on the machine (e.g. someone's cargo build), listed by comm
Prints markdown: CPU seconds and % of all samples (NCPU x recorded time) per group, then the
top DSOs of each group with > 2% of the samples.

--windows FILE: lines "start end name" (epoch s, from timeline.py --windows); instead of the
whole-profile split, one line per window: CPU s per group in that window and, for dockerd and
containerd, the Go functions they were in (the innermost frame that is not the Go runtime,
the kernel or a syscall wrapper). --offset S is added to perf's sample times (perf record -k
mono stamps CLOCK_MONOTONIC; S = realtime - monotonic)."""
import collections
import re
import sys

HEAD = re.compile(
    r"^\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<time>[\d.]+):\s+"
    r"(?P<period>\d+)\s*(?P<rest>.*)$"
)
FRAME = re.compile(r"^\s*(?P<ip>[0-9a-f]+)\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)\s*$")
KTHREAD = re.compile(r"^(kworker|ksoftirqd|kswapd|rcu_|migration|jbd2|kcompact|khugepaged|kthreadd|watchdog|cpuhp|irq/|kdamond|writeback|flush-)")

args = sys.argv[1:]
windows_file, offset = None, 0.0
while args and args[0].startswith("--"):
    if args[0] == "--windows":
        windows_file = args[1]
    elif args[0] == "--offset":
        offset = float(args[1])
    args = args[2:]
ncpu = int(args[0]) if args else 1
clients = {int(a) for a in args[1:]}
samples = []  # (pid, comm, period, leaf dso, time, go function)
comms = collections.defaultdict(set)
NOT_APP = ("runtime.", "internal/", "syscall.", "golang.org/x/sys/", "[unknown]", "gcWriteBarrier")


def flush(head, frames):
    if head is None:
        return
    pid = int(head["pid"])
    comm = head["comm"]
    comms[pid].add(comm)
    if not frames:
        fm = FRAME.match(head["rest"])
        frames = [(fm["sym"], fm["dso"])] if fm else [("?", "?")]
    dso = frames[0][1].rsplit("/", 1)[-1]
    func = "(runtime or kernel)"
    for sym, fdso in frames:
        if "kernel" in fdso or fdso.startswith("[") or sym.startswith(NOT_APP):
            continue
        func = sym
        break
    samples.append((pid, comm, int(head["period"]), dso, float(head["time"]) + offset, func))


head, frames = None, []
for line in sys.stdin:
    m = None if line.startswith("\t") else HEAD.match(line)
    if m:
        flush(head, frames)
        head, frames = m, []
        continue
    fm = FRAME.match(line)
    if fm and head is not None:
        frames.append((fm["sym"], fm["dso"]))
flush(head, frames)


def group(pid, comm):
    names = comms[pid]
    if pid == 0 or comm.startswith("swapper"):
        return "idle"
    if pid in clients and "rbuild" in names:
        return "rbuild client"
    if (pid in clients and "docker" in names) or "docker-buildx" in names:
        return "buildx client (docker CLI + plugin)"
    if "rbuild" in names:
        return "other: rbuild (not the measured run)"
    if "dockerd" in names:
        return "dockerd (embedded BuildKit)"
    if "containerd" in names:
        return "containerd"
    if any(n.startswith(("containerd-shim", "runc")) for n in names):
        return "containerd-shim/runc"
    if "docker-registry" in names:
        return "registry"
    if KTHREAD.match(comm):
        return "kernel threads"
    return "other: " + comm


if windows_file:
    SHORT = {"rbuild client": "rbuild", "buildx client (docker CLI + plugin)": "buildx",
             "dockerd (embedded BuildKit)": "dockerd", "containerd-shim/runc": "shim/runc",
             "kernel threads": "kthreads"}
    print("| window | wall s | CPU s by process (busy only) | dockerd in | containerd in |")
    print("|---|---:|---|---|---|")
    for line in open(windows_file):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        lo, hi, name = float(parts[0]), float(parts[1]), parts[2].strip()
        g_cpu = collections.Counter()
        funcs = {"dockerd": collections.Counter(), "containerd": collections.Counter()}
        for pid, comm, period, dso, t, func in samples:
            if not (lo <= t < hi):
                continue
            g = group(pid, comm)
            if g == "idle":
                continue
            g = SHORT.get(g, g.replace("other: ", ""))
            g_cpu[g] += period
            if g in funcs:
                funcs[g][func] += period
        cpu = ", ".join(f"{g} {p / 1e9:.3f}" for g, p in g_cpu.most_common(5)) or "-"

        def top(c):
            tot = sum(c.values())
            return "; ".join(f"{f.split('/')[-1][:60]} {100 * q / tot:.0f}%" for f, q in c.most_common(3)) if tot else "-"

        print(f"| {name[:70].replace('|', '/')} | {hi - lo:.3f} | {cpu} | {top(funcs['dockerd'])} | {top(funcs['containerd'])} |")
    sys.exit(0)

total = sum(s[2] for s in samples) or 1
by_group = collections.Counter()
by_group_dso = collections.defaultdict(collections.Counter)
for pid, comm, period, dso, _t, _f in samples:
    g = group(pid, comm)
    by_group[g] += period
    by_group_dso[g][dso] += period

# "other: X" groups below 1% are folded into one line.
rows = []
folded = 0
for g, p in by_group.most_common():
    if g.startswith("other: ") and p / total < 0.01:
        folded += p
        continue
    rows.append((g, p))
if folded:
    rows.append(("other (each < 1%)", folded))

busy = total - by_group.get("idle", 0)
print(f"samples cover {total / 1e9:.2f} CPU-s ({ncpu} CPUs); busy (not idle) {busy / 1e9:.2f} CPU-s\n")
print("| process group | CPU s | % of machine | % of busy |")
print("|---|---:|---:|---:|")
for g, p in rows:
    share_busy = "" if g == "idle" else f"{100 * p / busy:.1f}"
    print(f"| {g} | {p / 1e9:.2f} | {100 * p / total:.1f} | {share_busy} |")

print("\nTop DSOs per group (> 2% of the group):\n")
for g, p in rows:
    if g in ("idle",) or g not in by_group_dso:
        continue
    parts = [f"{d} {100 * q / p:.0f}%" for d, q in by_group_dso[g].most_common(6) if q / p > 0.02]
    print(f"- {g}: " + ", ".join(parts))

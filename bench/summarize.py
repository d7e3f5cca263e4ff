#!/usr/bin/env python3
"""Medians and ratios from bench/run's samples; writes the table (markdown) to stdout.
Usage: summarize.py SAMPLES.tsv
SAMPLES lines: scenario client run wall_s user_s sys_s maxrss_kib  (run 0 = warm-up, ignored)"""
import statistics
import sys

SCENARIOS = [
    ("a", "warm no-op build (small Dockerfile, all cached)"),
    ("b", "cold context: 10,016 files / ~200 MB, `COPY . /ctx` into scratch, cache pruned each run"),
    ("c", "same context, one file changed (warm)"),
    ("d", "seed: fresh runner (pruned) from registry cache, mode=max cache export, push"),
]
# (metric, limit) per scenario: ratio rbuild/buildx must be <= limit.
TARGETS = {
    "a": [("wall", 0.3), ("rss", 0.3)],
    "b": [("cpu", 0.5)],
    "c": [("wall", 0.8)],
    "d": [("wall", 0.5)],
}

samples = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) != 7:
        continue
    sc, client, run = parts[0], parts[1], int(parts[2])
    if run == 0:
        continue
    wall, user, sys_, rss = float(parts[3]), float(parts[4]), float(parts[5]), int(parts[6])
    samples.setdefault((sc, client), []).append((wall, user + sys_, rss / 1024.0))


def med(sc, client):
    rows = samples.get((sc, client), [])
    if not rows:
        return None
    return tuple(statistics.median(r[i] for r in rows) for i in range(3)) + (len(rows),)


def fmt(m):
    if m is None:
        return "n/a"
    return f"{m[0]:.2f} s / {m[1]:.2f} s / {m[2]:.0f} MiB"


print("| scenario | rbuild median wall / CPU / RSS | buildx median wall / CPU / RSS "
      "| ratio wall / CPU / RSS (rbuild÷buildx) | target (ratio) | met? |")
print("|---|---|---|---|---|---|")
for sc, desc in SCENARIOS:
    r, b = med(sc, "rbuild"), med(sc, "buildx")
    idx = {"wall": 0, "cpu": 1, "rss": 2}
    if r and b:
        ratios = [r[i] / b[i] if b[i] else float("inf") for i in range(3)]
        rtxt = " / ".join(f"{x:.2f}" for x in ratios)
        oks = [ratios[idx[m]] <= lim for m, lim in TARGETS[sc]]
        met = "yes" if all(oks) else ("partly" if any(oks) else "no")
        met += " (" + ", ".join(f"{m} {ratios[idx[m]]:.2f}" for m, _ in TARGETS[sc]) + ")"
        n = f" (n={r[3]}/{b[3]})"
    else:
        rtxt, met, n = "n/a", "not measured", ""
    tgt = ", ".join(f"{m} <= {lim}" for m, lim in TARGETS[sc])
    print(f"| {sc}. {desc}{n} | {fmt(r)} | {fmt(b)} | {rtxt} | {tgt} | {met} |")

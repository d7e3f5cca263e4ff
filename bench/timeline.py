#!/usr/bin/env python3
"""Wall-clock timeline of one client run, relative to the client's start (bench/profile).

Usage:
  timeline.py T0 T1 [--rawjson FILE] [--plain FILE] [--log FILE]

  T0, T1     epoch seconds (float) when the client process was started and when it exited
  --rawjson  `rbuild --progress rawjson` output (stdout): vertex and status started/completed
             times as the daemon stamped them (same machine clock)
  --plain    buildx `--progress plain` stderr, each line prefixed by "<epoch seconds> " when
             the client wrote it (bench/profile's stamper); buildx 0.13 has no rawjson
  --log      rbuild stderr with RBUILD_LOG=rbuild=debug (tracing lines with RFC 3339 times)
  --windows  write the phases of the run to this file, one "start end name" (epoch s) per
             line, for perfsplit.py --windows: before the first vertex, every vertex that ran
             (not cached), after the last vertex

Prints a markdown table: start and end offsets (s from T0), duration, and what (vertex,
status item of a vertex, or a client log event), plus the uncovered gaps (time in which no
vertex of the daemon was running: client start-up, session set-up, solve request, exit)."""
import json
import re
import sys
from datetime import datetime, timezone

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def epoch(ts):
    """RFC 3339 with up to nanoseconds -> float epoch seconds (None for Go's zero time)."""
    if not ts or ts.startswith("0001-"):
        return None
    m = RFC3339.search(ts)
    if not m:
        return None
    base, frac, tz = m.groups()
    tz = "+00:00" if tz == "Z" else tz
    dt = datetime.fromisoformat(base + tz).astimezone(timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def main():
    args = sys.argv[1:]
    t0, t1 = float(args[0]), float(args[1])
    opts = dict(zip(args[2::2], args[3::2]))
    rows = []  # (start, end, kind, text)

    if "--rawjson" in opts:
        vertices, statuses = {}, {}
        for line in open(opts["--rawjson"]):
            line = line.strip()
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            for v in msg.get("vertexes") or []:
                cur = vertices.setdefault(v["digest"], {"name": v.get("name", "?")})
                for key in ("started", "completed"):
                    t = epoch(v.get(key))
                    if t is not None:
                        cur[key] = min(cur.get(key, t), t) if key == "started" else max(cur.get(key, t), t)
                cur["cached"] = cur.get("cached") or v.get("cached", False)
            for s in msg.get("statuses") or []:
                key = (s.get("vertex"), s.get("id"))
                cur = statuses.setdefault(key, {})
                for k in ("started", "completed"):
                    t = epoch(s.get(k))
                    if t is not None:
                        cur[k] = min(cur.get(k, t), t) if k == "started" else max(cur.get(k, t), t)
                if s.get("total"):
                    cur["total"] = s["total"]
                if s.get("current"):
                    cur["current"] = s["current"]
        for dg, v in vertices.items():
            rows.append((v.get("started"), v.get("completed"), "vertex",
                         v["name"] + (" (cached)" if v.get("cached") else "")))
            for (vd, sid), s in statuses.items():
                if vd == dg:
                    size = ""
                    if s.get("current"):
                        size = f" [{s['current']}{'/' + str(s['total']) if s.get('total') else ''}]"
                    rows.append((s.get("started"), s.get("completed"), "  status", f"{sid}{size}"))

    if "--plain" in opts:
        # "#5 [1/1] COPY . /ctx" opens vertex 5, "#5 DONE 7.2s" / "#5 CACHED" / "#5 ERROR" closes it;
        # "#5 sending tarball 1.2s done" is a status item that ended at that line.
        open_v, names = {}, {}
        for line in open(opts["--plain"]):
            parts = line.rstrip("\n").split(" ", 1)
            if len(parts) != 2:
                continue
            try:
                t = float(parts[0])
            except ValueError:
                continue
            text = parts[1]
            m = re.match(r"#(\d+) (.*)", text)
            if not m:
                continue
            num, rest = m.groups()
            if num not in open_v:
                open_v[num] = t
                names[num] = rest
                continue
            d = re.match(r"(DONE|CACHED|ERROR|CANCELED)\b ?(.*)", rest)
            if d:
                start = open_v[num]
                if d.group(1) == "DONE" and d.group(2).endswith("s"):
                    try:  # the daemon's own duration is more exact than our line stamps
                        start = max(t - float(d.group(2)[:-1]), open_v[num])
                    except ValueError:
                        pass
                rows.append((start, t, "vertex", f"#{num} {names[num]} ({d.group(1)})"))
                continue
            st = re.match(r"(.*?) (\d+\.\d+)s done$", rest)
            if st:
                rows.append((t - float(st.group(2)), t, "  status", f"#{num} {st.group(1)}"))

    if "--log" in opts:
        for line in open(opts["--log"]):
            line = ANSI.sub("", line)
            t = epoch(line[:40])
            if t is None:
                continue
            text = RFC3339.sub("", line.strip(), count=1).strip()
            rows.append((t, None, "log", text[:110]))

    def off(t):
        return "" if t is None else f"{t - t0:7.3f}"

    # BuildKit shares vertices between builds: the status stream can carry a vertex another
    # client's build started before this client did. Shown, but not counted as this run's.
    rows = [(s, e, k, t + " (shared with another build that started it before this client ran)") if
            (s is not None and s < t0 and k == "vertex") else (s, e, k, t) for s, e, k, t in rows]
    rows.sort(key=lambda r: (r[0] if r[0] is not None else t1, r[2] != "vertex"))
    print(f"client wall: {t1 - t0:.3f} s (t=0 is the client's start)\n")
    print("| start s | end s | dur s | kind | what |")
    print("|---:|---:|---:|---|---|")
    print(f"| {off(t0)} | | | client | process started |")
    for start, end, kind, text in rows:
        dur = f"{end - start:6.3f}" if start is not None and end is not None else ""
        text = text.replace("|", "\\|")
        print(f"| {off(start)} | {off(end)} | {dur} | {kind.strip()} | {'↳ ' if kind.startswith(' ') else ''}{text} |")
    print(f"| {off(t1)} | | | client | process exited |")

    # Daemon-busy time: union of (non-cached) vertex intervals; the rest of the wall is
    # client start-up, session/solve set-up, status drain and exit (or idle gaps).
    spans = sorted((s, min(e, t1)) for s, e, k, _ in rows
                   if k == "vertex" and s is not None and e is not None and e > s and s >= t0)
    busy, cur_s, cur_e = 0.0, None, None
    for s, e in spans:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += cur_e - cur_s
    first = min((s for s, _ in spans), default=None)
    last = max((e for _, e in spans), default=None)
    print()
    print(f"- vertices running (union): {busy:.3f} s of {t1 - t0:.3f} s wall")
    if first is not None:
        print(f"- before the first vertex started: {first - t0:.3f} s; after the last one completed: {t1 - last:.3f} s")

    if "--windows" in opts:
        with open(opts["--windows"], "w") as w:
            if first is not None:
                w.write(f"{t0:.6f} {first:.6f} client start -> first vertex\n")
            for start, end, kind, text in rows:
                if (kind == "vertex" and start is not None and end is not None and start >= t0
                        and end - start >= 0.005):
                    w.write(f"{max(start, t0):.6f} {min(end, t1):.6f} {text}\n")
            if last is not None:
                w.write(f"{last:.6f} {t1:.6f} last vertex -> client exit\n")


if __name__ == "__main__":
    main()

"""Turn recorded measurements into the benchmark's tables (pure: no I/O, no clock).

A *record* is one operation of one client in one run, as ``runner.py`` collected it::

    {"workload": "a", "op": "publish", "client": "ours", "run": 0,
     "seconds": 5.66, "maxrss_mb": 70.1,             # or "error": "..." when it failed
     "cpu_s": 3.2, "rchar": 17000000, "read_bytes": 0}

``summarize`` groups the records that did not fail by (workload, operation, client) into
*rows* (median seconds, peak RSS, MB/s, CPU seconds per GB moved, bytes passed to
``read()`` per byte moved), and compares every other client with the anchor,
this project (``ours``), in *ratios*: ``theirs / ours``, so above 1 means ours was faster.
A client with no successful record has no row and no ratio; a target that needs it is
"not measured". ``markdown`` and ``to_json`` render a whole report.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from typing import Any

#: the client every other one is compared with
ANCHOR = "ours"

Key = tuple[str, str, str]  # (workload, op, client)


def summarize(records: list[dict[str, Any]], volumes: Mapping[str, int]) -> dict[str, Any]:
    """Rows (medians per workload, operation and client), ratios against the anchor, targets.

    ``volumes`` gives the bytes a transfer workload moves (for MB/s); failed records
    (with an ``error``) are left out of every figure.
    """
    groups: dict[Key, list[dict[str, Any]]] = {}
    for record in records:
        if "error" in record:
            continue
        groups.setdefault((record["workload"], record["op"], record["client"]), []).append(record)
    rows = []
    for (workload, op, client), found in sorted(groups.items()):
        seconds = statistics.median(r["seconds"] for r in found)
        row = {
            "workload": workload,
            "op": op,
            "client": client,
            "runs": len(found),
            "median_s": seconds,
            "peak_rss_mb": max(r["maxrss_mb"] for r in found),
        }
        if workload in volumes and op in ("publish", "fetch") and seconds > 0:
            moved = volumes[workload]
            row["mb_per_s"] = moved / seconds / 1e6
            if all("cpu_s" in r for r in found):
                row["cpu_s_per_gb"] = statistics.median(r["cpu_s"] for r in found) / (moved / 1e9)
            if all("rchar" in r for r in found):
                row["read_per_byte"] = statistics.median(r["rchar"] for r in found) / moved
        rows.append(row)
    median = {(r["workload"], r["op"], r["client"]): r["median_s"] for r in rows}
    ratios = [
        {
            "workload": workload,
            "op": op,
            "versus": client,
            "their_s": seconds,
            "ours_s": median[(workload, op, ANCHOR)],
            "speedup": speedup(median, workload, op, client),
        }
        for (workload, op, client), seconds in sorted(median.items())
        if client != ANCHOR and (workload, op, ANCHOR) in median
    ]
    return {"rows": rows, "ratios": ratios, "targets": targets(median, rows)}


def speedup(median: Mapping[Key, float], workload: str, op: str, other: str) -> float | None:
    """How many times faster the anchor was than ``other`` (``theirs / ours``); None when
    either was not measured or the anchor's time is zero."""
    ours, theirs = median.get((workload, op, ANCHOR)), median.get((workload, op, other))
    return theirs / ours if ours and theirs is not None else None


def targets(median: Mapping[Key, float], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The performance issue's targets, each with the measured figure and whether it is met
    (None: not measured)."""
    found = []

    def check(label: str, value: float | None, goal: str, met: Callable[[float], bool]) -> None:
        found.append(
            {"target": label, "measured": value, "goal": goal, "met": None if value is None else met(value)}
        )

    by_key = {(x["workload"], x["op"], x["client"]): x for x in rows}
    for workload, op in [(w, o) for w in ("b", "c", "f") for o in ("publish", "fetch")]:
        for peer in ("aws", "s5cmd", "s3fs"):
            strict = (workload, peer) == ("b", "s3fs")  # the issue asks 1.3x raw s3fs there
            r = speedup(median, workload, op, peer)
            if strict:
                check(f"({workload}) {op}: speed-up over {peer}", r, ">= 1.3x", lambda v: v >= 1.3)
            else:
                check(f"({workload}) {op}: speed-up over {peer}", r, "> 1x", lambda v: v > 1)
    for op in ("publish", "fetch"):
        r = speedup(median, "a", op, "modelkit")
        check(f"(a) {op}: speed-up over modelkit 0.1.3", r, ">= 12x", lambda v: v >= 12)
        r = speedup(median, "a", op, "s3fs")
        check(f"(a) {op}: speed-up over raw s3fs", r, ">= 1.3x", lambda v: v >= 1.3)
    for op in ("update", "cli"):
        r = speedup(median, "g", op, "modelkit")
        check(f"(g) small-file update, {op}: speed-up over modelkit 0.1.3", r, "> 1x", lambda v: v > 1)
    r = speedup(median, "d", "list", "modelkit")
    check("(d) list: speed-up over modelkit 0.1.3", r, ">= 12x", lambda v: v >= 12)
    e = median.get(("e", "in-proc", ANCHOR))
    check(
        "(e) cached pinned fetch in-process (us)", None if e is None else e * 1e6, "<= 50", lambda v: v <= 50
    )
    e = median.get(("e", "cli", ANCHOR))
    check("(e) cached pinned fetch, CLI (s)", e, "<= 0.3", lambda v: v <= 0.3)
    for (workload, op, client), row in sorted(by_key.items()):
        if client != ANCHOR:
            continue
        check(f"({workload}) {op}: peak RSS of ours (MB)", row["peak_rss_mb"], "<= 256", lambda v: v <= 256)
        if "read_per_byte" in row:
            label = f"({workload}) {op}: bytes read per byte moved, ours"
            check(label, row["read_per_byte"], "<= 1.1", lambda v: v <= 1.1)
    return found


def fmt_seconds(value: float) -> str:
    """A duration with a unit that keeps three significant figures readable."""
    if value < 1e-3:
        return f"{value * 1e6:.1f} us"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def _fmt_speedup(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: the run, the machine, then rows, ratios, targets, failures."""
    m = report["machine"]
    lines = [
        f"Run {report['started']} · RTT {report['rtt_ms']:g} ms · runs {report['runs']} "
        f"(1 GiB case: {report['runs_large']}) · {'quick sizes' if report['quick'] else 'full sizes'}",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, {m['system']}, "
        f"Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| workload | operation | client | runs | median | MB/s | peak RSS (MB) | CPU s/GB | read/moved |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["summary"]["rows"]:
        rate = f"{row['mb_per_s']:.1f}" if "mb_per_s" in row else ""
        cpu = f"{row['cpu_s_per_gb']:.2f}" if "cpu_s_per_gb" in row else ""
        read = f"{row['read_per_byte']:.2f}" if "read_per_byte" in row else ""
        lines.append(
            f"| {row['workload']} | {row['op']} | {row['client']} | {row['runs']} | "
            f"{fmt_seconds(row['median_s'])} | {rate} | {row['peak_rss_mb']:.0f} | {cpu} | {read} |"
        )
    lines += [
        "",
        "| workload | operation | ours | versus | theirs | theirs / ours |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in report["summary"]["ratios"]:
        lines.append(
            f"| {r['workload']} | {r['op']} | {fmt_seconds(r['ours_s'])} | {r['versus']} | "
            f"{fmt_seconds(r['their_s'])} | {_fmt_speedup(r['speedup'])} |"
        )
    lines += ["", "| target | goal | measured | met |", "|---|---|---:|---|"]
    for t in report["summary"]["targets"]:
        value = "n/a" if t["measured"] is None else f"{t['measured']:.2f}"
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['goal']} | {value} | {met} |")
    failures = [r for r in report["records"] if "error" in r]
    if report["notes"] or failures:
        lines.append("")
    lines += [f"- {note}" for note in report["notes"]]
    lines += [
        f"- FAILED {r['workload']} {r['op']} {r['client']} run {r['run']}: {r['error']}" for r in failures
    ]
    return "\n".join(lines) + "\n"


def to_json(report: dict[str, Any]) -> str:
    """The report as JSON (records included), as written to ``bench-*.json``."""
    return json.dumps(report, indent=1)

"""Benchmark modelkit-assets against modelkit 0.1.3, raw s3fs and the AWS CLI.

``runner.py`` runs the workloads (a: 1,000 x 16 KiB, b: 1 GiB, c: 100 x 8 MiB, d: list,
e: cached pinned fetch) against moto behind ``proxy.py``; ``report.py`` turns the records
into medians and ratios. Results: ``benchmarks/results/bench-*.{json,md}``.

Usage::

    nox -s bench                                  # or: python benchmarks/run.py
    python benchmarks/run.py --quick              # small sizes, one run: a smoke test
    python benchmarks/run.py --workloads a,d --clients ours,s3fs --rtt-ms 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # runner and report, when imported

import report
import runner


def parse(argv: list[str] | None = None) -> runner.Options:
    """The command line as ``runner.Options``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rtt-ms", type=float, default=20.0, help="round trip added by the proxy (0: loopback)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (medians; default 5)")
    parser.add_argument("--runs-large", type=int, default=3, help="runs of the 1 GiB case")
    parser.add_argument("--quick", action="store_true", help="small sizes and one run: a smoke test")
    parser.add_argument("--clients", default=",".join(runner.ALL_CLIENTS))
    parser.add_argument("--workloads", default=",".join(runner.ALL_WORKLOADS))
    parser.add_argument("--out", type=Path, default=runner.HERE / "results")
    parser.add_argument(
        "--venv",
        type=Path,
        default=runner.HERE / "results" / "venv",
        help="virtualenv for modelkit 0.1.3 and awscli (created when missing)",
    )
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else 1 if args.quick else 5
    return runner.Options(
        rtt_ms=args.rtt_ms,
        runs=runs,
        runs_large=1 if args.quick else args.runs_large,
        quick=args.quick,
        clients=tuple(c for c in args.clients.split(",") if c),
        workloads=tuple(w for w in args.workloads.split(",") if w),
        out=args.out,
        venv=args.venv,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, summarize, write ``bench-<start>.{json,md}`` and print the markdown."""
    options = parse(argv)
    measured = runner.measure(options)
    result = {**measured, "summary": report.summarize(measured["records"], options.sizes.volumes())}
    stem = f"bench-{result['started']}"
    (options.out / f"{stem}.json").write_text(report.to_json(result))
    text = report.markdown(result)
    (options.out / f"{stem}.md").write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()

"""Sparkify benchmarks: generate datasets at several scales and measure, in one run, each
figure next to its floor or baseline measured on the same files.

    python benchmarks/run.py --scales tiny            # seconds; CI runs this (make bench-smoke)
    python benchmarks/run.py --scales small,medium    # make bench
    python benchmarks/run.py --scales small,medium,large   # make bench-large (opt-in, long)

Prints a table per scale and writes benchmarks/results/<scale>-<date>.json and latest.json.
Targets are reported, never asserted: the exit code is 1 only when a measurement broke.
See docs/performance.md for the figures and what bounds them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import scales as t
from measure_local import Dataset, duckdb_load, generate_dataset, reruns, song_catalogue
from measure_servers import Skip, postgres, s3
from report import RESULTS, Figure, ScaleResult, print_headlines, print_table, write_json
from rich.console import Console

DATA = Path(__file__).with_name("data")


def _section(result: ScaleResult, name: str, measure: Callable[[], object]) -> object:
    """Run one measurement; a Skip is printed as skipped, anything else is an error."""
    started = time.perf_counter()
    try:
        return measure()
    except Skip as reason:
        result.skipped[name] = str(reason)
    except Exception:
        result.errors[name] = traceback.format_exc()
    finally:
        seconds = time.perf_counter() - started
        result.details.setdefault("section_seconds", {})[name] = round(seconds, 2)
        result.details.setdefault("load_average", {})[name] = os.getloadavg()
    return None


def run_scale(
    scale: t.Scale, data: Path, keep: bool, skip: set[str], console: Console
) -> ScaleResult:
    result = ScaleResult(scale.name, scale.budget_seconds)
    started = time.perf_counter()
    root, work = data / scale.name, data / f"{scale.name}-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    def section(name: str, message: str, measure: Callable[[], object]) -> object:
        if name in skip:
            result.skipped[name] = "--skip"
            return None
        console.print(f"  {message} ...")
        return _section(result, name, measure)

    console.print(f"[bold]{scale.name}[/]: generating ~{scale.approx_events:,} events ...")
    ds = _section(result, "generator", lambda: generate_dataset(scale, root, result))
    if isinstance(ds, Dataset):
        database = section(
            "duckdb", "DuckDB full load", lambda: duckdb_load(ds, scale, work, result)
        )
        section("songs", "song catalogue", lambda: song_catalogue(ds, scale, work, result))
        if isinstance(database, Path):
            section("rerun", "incremental reruns", lambda: reruns(ds, database, result))
        limit = scale.budget_seconds / 3
        section("postgres", "PostgreSQL", lambda: postgres(ds, result, timeout=limit))
        section("s3", "S3 source", lambda: s3(ds, scale, work, result))
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    return result


def compare_large(results: dict[str, ScaleResult]) -> None:
    """The 10M load should take at most 12x the 1M load (linear), measured in the same run."""
    if "large" not in results or "medium" not in results:
        return
    loads = {n: r.details.get("duckdb_load", {}).get("etl") for n, r in results.items()}
    if not loads.get("large") or not loads.get("medium"):
        return
    ratio = loads["large"]["seconds"] / loads["medium"]["seconds"]
    events = {n: results[n].dataset["events"] for n in ("medium", "large")}
    results["large"].add(
        Figure(
            "duckdb",
            "10M load time / 1M load time",
            ratio,
            "x",
            baseline=f"events {events['large'] / events['medium']:.1f}x",
            target=f"<= {t.LARGE_MAX_TIME_RATIO:.0f}x",
            met=ratio <= t.LARGE_MAX_TIME_RATIO,
            headline="large-time",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", default="small,medium", help="comma-separated: " + ", ".join(t.SCALES)
    )
    parser.add_argument("--data", type=Path, default=DATA, help="where datasets are generated")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where JSON goes")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated datasets")
    parser.add_argument("--skip", default="", help="sections to skip, e.g. postgres,s3")
    args = parser.parse_args(argv)
    # Stopped from outside: unwind, so the servers and datasets of the run are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = [n.strip() for n in args.scales.split(",") if n.strip()]
    unknown = [n for n in names if n not in t.SCALES]
    if unknown or not names:
        parser.error(f"unknown scale(s) {unknown}; choose from {', '.join(t.SCALES)}")
    console = Console(width=None if sys.stdout.isatty() else 180)
    for name in names:
        scale = t.SCALES[name]
        console.print(
            f"scale {name}: ~{scale.approx_events:,} events, {scale.songs:,} song files; "
            f"budget {scale.budget_seconds} s"
        )
    results: dict[str, ScaleResult] = {}
    for name in names:
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        results[name] = run_scale(t.SCALES[name], args.data, args.keep_data, skip, console)
    compare_large(results)
    for result in results.values():
        print_table(result, console)
        if result.seconds > result.budget_seconds:
            console.print(
                f"  [yellow]over budget[/]: {result.seconds:.0f} s > {result.budget_seconds} s"
            )
    print_headlines(list(results.values()), console)
    for path in write_json(list(results.values()), args.results):
        console.print(f"wrote {path}")
    broken = {f"{r.scale}/{s}": e for r in results.values() for s, e in r.errors.items()}
    for where, error in broken.items():
        console.print(f"[red]{where} failed:[/]\n{error}", highlight=False)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""Measurements that need no server: the generator, DuckDB loads and their floors, the song
catalogue, and incremental reruns. Each function adds figures to a ``ScaleResult``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scales as t
from proc import command_seconds, run_child, watched
from report import Figure, ScaleResult
from scales import Scale

from sparkify.generator import SHARDS, GenerateOptions

SPARKIFY = Path(sys.executable).with_name("sparkify")


@dataclass(frozen=True)
class Dataset:
    root: Path
    events: int  # events in the full-load files
    load_files: list[str]  # event files of the full load (all days but the last)
    new_day_events: int
    until: dt.date  # the last day of the full load

    @property
    def songs(self) -> str:
        return str(self.root / "song_data")

    @property
    def logs(self) -> str:
        return str(self.root / "log_data")


def _lines(path: str) -> int:
    with open(path, "rb") as handle:
        data = handle.read()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _generate_in_child(root: Path, options: GenerateOptions, workers: int) -> dict[str, Any]:
    """One ``generate()`` in its own process: events/s and events per CPU-second, both with
    the catalogue's own time (song files, made first, in the parent process) subtracted."""
    shutil.rmtree(root, ignore_errors=True)
    plain = {k: v for k, v in vars(options).items() if k != "start"}
    spec = {"out": str(root), "options": plain, "start": options.start.isoformat()}
    answer = run_child("generate", {**spec, "workers": workers})
    summary = answer["summary"]
    events = summary["events"]
    return {
        **summary,
        "cpu_seconds": answer["cpu_seconds"],
        "events_per_s": events / max(summary["seconds"] - summary["catalogue_seconds"], 1e-9),
        "events_per_cpu_s": events
        / max(answer["cpu_seconds"] - summary["catalogue_cpu_seconds"], 1e-9),
    }


def generate_dataset(scale: Scale, root: Path, result: ScaleResult) -> Dataset:
    """Generate ``days + 1`` days with one simulating process per core, then the same dataset
    with one process (the baseline, written beside and removed). Events/s count the events'
    own time: the catalogue's (song files), which the summary reports, is subtracted."""
    options = GenerateOptions(
        users=scale.users,
        days=scale.days + 1,
        songs=scale.songs,
        events_per_user_day=scale.events_per_user_day,
    )
    cores = min(os.cpu_count() or 1, SHARDS)
    runs = {cores: _generate_in_child(root, options, cores)}
    if cores > 1:
        scratch = root.with_name(root.name + "-one-process")
        runs[1] = _generate_in_child(scratch, options, 1)
        shutil.rmtree(scratch, ignore_errors=True)
    best, one = runs[cores], runs[1]
    files = sorted(str(p) for p in (root / "log_data").rglob("*.json"))
    load_files, new_day = files[:-1], files[-1]
    events = sum(_lines(f) for f in load_files)
    judged = best["events"] >= 900_000  # below, start-up and the catalogue's cost dominate
    result.dataset = {
        "root": str(root),
        "events": events,
        "new_day_events": _lines(new_day),
        "event_files": len(load_files),
        "song_files": best["song_files"],
        "event_bytes": sum(os.path.getsize(f) for f in load_files),
        "generate_options": {k: str(v) for k, v in vars(options).items()},
    }
    result.add(
        Figure(
            "generator",
            f"{best['events']:,} events written by {cores} simulating process(es)",
            best["events_per_s"],
            "events/s",
            baseline=f"1 process {one['events_per_s']:,.0f} events/s",
            ratio=best["events_per_s"] / one["events_per_s"],
            ratio_label="one process's events/s",
            target=f">= {t.GENERATOR_EVENTS_PER_S:,} events/s",
            met=best["events_per_s"] >= t.GENERATOR_EVENTS_PER_S if judged else None,
            note=f"events per CPU-second: {best['events_per_cpu_s']:,.0f} with {cores} "
            f"processes, {one['events_per_cpu_s']:,.0f} with one; catalogue "
            f"({best['song_files']:,} song files, {best['catalogue_seconds']:.2f} s) "
            f"subtracted; load average {os.getloadavg()[0]:.1f}",
            headline="generator",
        )
    )
    result.details["generator"] = {str(n): run for n, run in runs.items()}
    return Dataset(
        root, events, load_files, _lines(new_day), options.start + dt.timedelta(scale.days - 1)
    )


def duckdb_settings(database: Path) -> dict[str, str]:
    return {"WAREHOUSE.BACKEND": "duckdb", "WAREHOUSE.PATH": str(database)}


def _fresh(path: Path) -> Path:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    return path


def _etl_command(ds: Dataset, database: Path, *options: str) -> list[str]:
    """``sparkify etl`` of the dataset's full load into ``database``."""
    paths = ["--database", str(database), "--songs", ds.songs, "--logs", ds.logs]
    return [str(SPARKIFY), "etl", *paths, "--until", ds.until.isoformat(), *options]


def _rounds(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


def duckdb_load(ds: Dataset, scale: Scale, work: Path, result: ScaleResult) -> Path:
    """The whole ``sparkify etl`` command (start-up, staging, star tables, checks) next to
    DuckDB's bare CTAS of the same files, in interleaved rounds (the median ratio of the
    rounds is the figure); then one load in-process for the per-step split; the count(*)
    floor once."""

    def floor(mode: str) -> dict[str, Any]:
        spec = {"database": str(_fresh(work / "floor.duckdb")), "files": ds.load_files}
        answer = run_child("duckdb_floor", {**spec, "mode": mode})
        if answer["rows"] != ds.events:
            raise RuntimeError(f"the {mode} floor read {answer['rows']} rows, not {ds.events}")
        return answer

    count = floor("count")
    ctas: list[float] = []
    cli: list[float] = []
    cli_peak = ctas_peak = 0
    for _ in range(scale.duckdb_rounds):
        bare = floor("ctas")
        ctas.append(bare["seconds"])
        ctas_peak = max(ctas_peak, bare["peak_tree_rss"])
        command = _etl_command(ds, _fresh(work / "cli.duckdb"), "--quiet")
        _, seconds, peak = watched(command)  # exit code 4 (checks failed) raises
        cli.append(seconds)
        cli_peak = max(cli_peak, peak)
    database = _fresh(work / "warehouse.duckdb")
    load_spec = {
        "settings": duckdb_settings(database),
        "songs": ds.songs,
        "logs": ds.logs,
        "until": ds.until.isoformat(),
        "checks": True,
    }
    load = run_child("etl", load_spec)
    if not load["checks_passed"]:
        raise RuntimeError("the quality checks failed after the full load")
    ratio = statistics.median(c / f for c, f in zip(cli, ctas, strict=True))
    seconds, rate = load["seconds"], ds.events / load["seconds"]
    at_scale = ds.events >= 900_000
    result.details["duckdb_load"] = {
        "etl": load,
        "floors": {"count": count, "ctas_seconds": ctas},
        "cli_seconds": cli,
        "cli_peak_tree_rss": cli_peak,
    }
    result.add(
        Figure(
            "duckdb",
            f"sparkify etl, whole command with checks (median of {len(cli)} rounds)",
            statistics.median(cli),
            "s",
            baseline=f"bare CTAS {statistics.median(ctas):.3f} s",
            ratio=ratio,
            ratio_label="CTAS (median of the rounds' ratios)",
            target=f"<= {t.DUCKDB_MAX_CTAS_RATIO}x CTAS (at 1M)",
            met=ratio <= t.DUCKDB_MAX_CTAS_RATIO if at_scale else None,
            note=f"rounds, etl: {_rounds(cli)} s; CTAS: {_rounds(ctas)} s",
            headline="duckdb",
        ),
        Figure(
            "duckdb",
            f"full load of {ds.events:,} events in-process (staging + star + checks)",
            rate,
            "events/s",
            baseline=f"count(*) {count['seconds']:.3f} s "
            f"= {ds.events / count['seconds']:,.0f} events/s",
            ratio=seconds / count["seconds"],
            ratio_label="of count(*)",
            target=f">= {t.DUCKDB_EVENTS_PER_S:,} events/s (at 1M)",
            met=rate >= t.DUCKDB_EVENTS_PER_S if at_scale else None,
            note=f"{seconds:.2f} s from connect to the end of the checks; steps in the JSON",
        ),
        Figure(
            "duckdb",
            "sparkify etl peak RSS (all processes)",
            cli_peak,
            "bytes",
            baseline=f"bare CTAS {ctas_peak / 1024**2:,.0f} MiB",
            target=f"<= {t.LARGE_MAX_RSS_BYTES / 1024**3:.0f} GiB (at 10M)",
            met=cli_peak <= t.LARGE_MAX_RSS_BYTES if ds.events >= 9_000_000 else None,
            note=f"in-process load: main {load['max_rss_self'] / 1024**2:,.0f} MiB, "
            f"largest worker {load['max_rss_children'] / 1024**2:,.0f} MiB",
            headline="memory",
        ),
    )
    return database


def song_catalogue(ds: Dataset, scale: Scale, work: Path, result: ScaleResult) -> None:
    """Songs-only run (list, read, parse, stage, upsert) next to a plain Python loop that
    reads and decodes the same files, in interleaved rounds (the median ratio is the figure)."""
    empty_logs = work / "no-logs"
    empty_logs.mkdir(exist_ok=True)
    loops: list[float] = []
    runs: list[dict[str, Any]] = []
    count = 0
    for _ in range(scale.duckdb_rounds):
        started = time.perf_counter()
        count = 0
        for folder, _, names in os.walk(ds.songs):
            for name in names:
                if name.endswith(".json"):
                    with open(os.path.join(folder, name), "rb") as handle:
                        json.loads(handle.read())
                    count += 1
        loops.append(time.perf_counter() - started)
        spec = {
            "settings": duckdb_settings(_fresh(work / "songs.duckdb")),
            "songs": ds.songs,
            "logs": str(empty_logs),
        }
        runs.append(run_child("etl", spec))
    seconds = [run["seconds"] for run in runs]
    ratio = statistics.median(s / loop for s, loop in zip(seconds, loops, strict=True))
    result.details["song_catalogue"] = {
        "etl": runs[-1],
        "seconds": seconds,
        "floor_seconds": loops,
        "files": count,
    }
    staged = sum(v for k, v in runs[-1]["phases"].items() if k in ("bulk_load", "parse", "stage"))
    result.add(
        Figure(
            "songs",
            f"{count:,} one-song files: songs-only run (median of {len(runs)} rounds)",
            statistics.median(seconds),
            "s",
            baseline=f"plain Python loop {statistics.median(loops):.3f} s",
            ratio=ratio,
            ratio_label="the loop (median of the rounds' ratios)",
            target=f"<= {t.SONGS_MAX_LOOP_RATIO:.0f}x the loop (at ~15k files)",
            met=ratio <= t.SONGS_MAX_LOOP_RATIO if 14_000 <= count <= 16_000 else None,
            note=f"rounds, run: {_rounds(seconds)} s; loop: {_rounds(loops)} s; of the last run "
            f"list+read+parse+stage {staged:.3f} s",
            headline="catalogue",
        )
    )


def reruns(ds: Dataset, database: Path, result: ScaleResult) -> None:
    """A rerun with nothing new (in-process and as the CLI), then one with one new day."""
    spec = {
        "settings": duckdb_settings(database),
        "songs": ds.songs,
        "logs": ds.logs,
        "until": ds.until.isoformat(),
    }
    noop = run_child("etl", spec)
    if noop["summary"]["lines_read"] != 0:
        raise RuntimeError("the no-op rerun read lines; the ledger did not skip unchanged files")
    start_up = command_seconds([str(SPARKIFY), "--version"], repeat=3)
    cli = [
        str(SPARKIFY),
        "etl",
        "--database",
        str(database),
        "--songs",
        ds.songs,
        "--logs",
        ds.logs,
        "--until",
        ds.until.isoformat(),
        "--no-checks",
        "--quiet",
    ]
    cli_seconds = command_seconds(cli, repeat=2)
    new_day = run_child("etl", {**spec, "until": None})
    result.details["reruns"] = {
        "noop": noop,
        "cli_seconds": cli_seconds,
        "start_up_seconds": start_up,
        "new_day": new_day,
    }
    result.add(
        Figure(
            "rerun",
            "nothing new: run_etl in-process",
            noop["seconds"],
            "s",
            baseline=f"CLI {cli_seconds:.3f} s - start-up {start_up:.3f} s = "
            f"{cli_seconds - start_up:.3f} s",
            target=f"<= {t.NOOP_RERUN_SECONDS} s",
            met=noop["seconds"] <= t.NOOP_RERUN_SECONDS,
            note=f"{noop['summary']['files']['skipped']:,} files skipped",
        ),
        Figure(
            "rerun",
            f"one new day ({ds.new_day_events:,} events)",
            new_day["seconds"],
            "s",
            baseline=f"no-op rerun {noop['seconds']:.3f} s",
            note=f"{new_day['summary']['files']['new']} new file(s)",
        ),
    )

"""Measurements that need no server: the generator, DuckDB loads and their floors, the song
catalogue, and incremental reruns. Each function adds figures to a ``ScaleResult``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scales as t
from proc import command_seconds, run_child
from report import Figure, ScaleResult
from scales import Scale

from sparkify.generator import GenerateOptions, generate

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


def generate_dataset(scale: Scale, root: Path, result: ScaleResult) -> Dataset:
    """Generate ``days + 1`` days; the catalogue's own cost is measured apart and subtracted."""
    shutil.rmtree(root, ignore_errors=True)
    options = GenerateOptions(
        users=scale.users,
        days=scale.days + 1,
        songs=scale.songs,
        events_per_user_day=scale.events_per_user_day,
    )
    summary = generate(root, options)
    scratch = root.with_name(root.name + "-catalogue-only")
    catalogue = generate(scratch, GenerateOptions(users=1, days=1, songs=scale.songs))
    shutil.rmtree(scratch, ignore_errors=True)
    event_seconds = max(summary.seconds - catalogue.seconds, 1e-9)
    files = sorted(str(p) for p in (root / "log_data").rglob("*.json"))
    load_files, new_day = files[:-1], files[-1]
    events = sum(_lines(f) for f in load_files)
    judged = summary.events >= 900_000  # below, the subtracted catalogue cost dominates
    result.dataset = {
        "root": str(root),
        "events": events,
        "new_day_events": _lines(new_day),
        "event_files": len(load_files),
        "song_files": summary.song_files,
        "event_bytes": sum(os.path.getsize(f) for f in load_files),
        "generate_options": {k: str(v) for k, v in vars(options).items()},
    }
    result.add(
        Figure(
            "generator",
            f"{summary.events:,} events written (catalogue cost subtracted)",
            summary.events / event_seconds,
            "events/s",
            baseline=f"with {summary.song_files:,} song files: "
            f"{summary.events / summary.seconds:,.0f} events/s",
            target=f">= {t.GENERATOR_EVENTS_PER_S:,} events/s",
            met=summary.events / event_seconds >= t.GENERATOR_EVENTS_PER_S if judged else None,
            note=f"catalogue alone {catalogue.seconds:.2f} s",
        )
    )
    result.details["generator"] = {
        "seconds": summary.seconds,
        "catalogue_seconds": catalogue.seconds,
        "events": summary.events,
    }
    return Dataset(
        root, events, load_files, _lines(new_day), options.start + dt.timedelta(scale.days - 1)
    )


def duckdb_settings(database: Path) -> dict[str, str]:
    return {"WAREHOUSE.BACKEND": "duckdb", "WAREHOUSE.PATH": str(database)}


def _fresh(path: Path) -> Path:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    return path


def duckdb_load(ds: Dataset, work: Path, result: ScaleResult) -> Path:
    """Full load (staging + star + checks) next to DuckDB's bare count(*) and CTAS floors."""
    floors = {}
    spec: dict[str, Any]
    for mode in ("count", "ctas"):
        spec = {
            "database": str(_fresh(work / "floor.duckdb")),
            "files": ds.load_files,
            "mode": mode,
        }
        floors[mode] = run_child("duckdb_floor", spec)
        if floors[mode]["rows"] != ds.events:
            raise RuntimeError(f"{mode} floor read {floors[mode]['rows']} rows, not {ds.events}")
    database = _fresh(work / "warehouse.duckdb")
    spec = {
        "settings": duckdb_settings(database),
        "songs": ds.songs,
        "logs": ds.logs,
        "until": ds.until.isoformat(),
        "checks": True,
    }
    load = run_child("etl", spec)
    if not load["checks_passed"]:
        raise RuntimeError("the quality checks failed after the full load")
    seconds, ctas, count = load["seconds"], floors["ctas"]["seconds"], floors["count"]["seconds"]
    rate = ds.events / seconds
    at_scale = ds.events >= 900_000
    result.details["duckdb_load"] = {"etl": load, "floors": floors}
    result.add(
        Figure(
            "duckdb",
            "full load: staging + star + checks",
            seconds,
            "s",
            baseline=f"bare CTAS {ctas:.3f} s",
            ratio=seconds / ctas,
            target=f"<= {t.DUCKDB_MAX_CTAS_RATIO}x CTAS (at 1M)",
            met=seconds / ctas <= t.DUCKDB_MAX_CTAS_RATIO if at_scale else None,
        ),
        Figure(
            "duckdb",
            f"full load of {ds.events:,} events",
            rate,
            "events/s",
            baseline=f"count(*) {count:.3f} s = {ds.events / count:,.0f} events/s",
            ratio=seconds / count,
            ratio_label="of count(*)",
            target=f">= {t.DUCKDB_EVENTS_PER_S:,} events/s (at 1M)",
            met=rate >= t.DUCKDB_EVENTS_PER_S if at_scale else None,
        ),
        Figure(
            "duckdb",
            "full load peak RSS (all processes)",
            load["peak_tree_rss"],
            "bytes",
            baseline=f"CTAS {floors['ctas']['peak_tree_rss'] / 1024**2:,.0f} MiB",
            target="<= 2 GiB (at 10M)",
            met=load["peak_tree_rss"] <= t.LARGE_MAX_RSS_BYTES if ds.events >= 9_000_000 else None,
            note=f"main {load['max_rss_self'] / 1024**2:,.0f} MiB, "
            f"largest worker {load['max_rss_children'] / 1024**2:,.0f} MiB",
        ),
    )
    return database


def song_catalogue(ds: Dataset, work: Path, result: ScaleResult) -> None:
    """Songs-only run (list, read, parse, stage, upsert) next to a plain Python read loop."""
    started = time.perf_counter()
    count = 0
    for folder, _, names in os.walk(ds.songs):
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(folder, name), "rb") as handle:
                    json.loads(handle.read())
                count += 1
    floor = time.perf_counter() - started
    empty_logs = work / "no-logs"
    empty_logs.mkdir(exist_ok=True)
    spec = {
        "settings": duckdb_settings(_fresh(work / "songs.duckdb")),
        "songs": ds.songs,
        "logs": str(empty_logs),
    }
    run = run_child("etl", spec)
    result.details["song_catalogue"] = {"etl": run, "floor_seconds": floor, "files": count}
    staged = sum(v for k, v in run["phases"].items() if k in ("bulk_load", "parse", "stage"))
    result.add(
        Figure(
            "songs",
            f"{count:,} one-song files: songs-only run",
            run["seconds"],
            "s",
            baseline=f"plain Python loop {floor:.3f} s",
            ratio=run["seconds"] / floor,
            target=f"<= {t.SONGS_15K_SECONDS} s (at 15k files)",
            met=run["seconds"] <= t.SONGS_15K_SECONDS if 14_000 <= count <= 16_000 else None,
            note=f"of which list+read+parse+stage {staged:.3f} s",
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

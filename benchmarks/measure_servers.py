"""Measurements against servers started for the run: PostgreSQL, and S3 (moto).

Each section skips itself, with the reason printed, when what it needs is missing.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import scales as t
from measure_local import Dataset, duckdb_settings
from proc import ChildFailed, ChildTimedOut, run_child
from report import Figure, ScaleResult

from sparkify.plan import TRANSFORM_STEPS
from sparkify.records import parse_events
from sparkify.staging import table_columns

TESTS = Path(__file__).resolve().parents[1] / "tests"


class Skip(Exception):
    """A section cannot run here; the message says why."""


def _import_test_helper(name: str) -> Any:
    """A helper module from tests/ (shared with the test suite's server fixtures)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    try:
        return __import__(name)
    except ImportError as exc:
        raise Skip(f"cannot import tests/{name}.py: {exc}") from None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway server, started the way tests/postgres_server.py starts it; yields a DSN."""
    if importlib.util.find_spec("sparkify.backends.postgres") is None:
        raise Skip("the PostgreSQL backend (sparkify.backends.postgres) is not there yet")
    helper = _import_test_helper("postgres_server")
    external = os.environ.get(helper.DSN_ENV)
    if external:
        yield external
        return
    bindir = helper.find_bindir()
    if bindir is None:
        raise Skip(helper.INSTALL_HINT)
    try:
        server = helper.ThrowawayServer(bindir)
    except BaseException as exc:  # pytest.skip() raises an Exception-free "Skipped"
        raise Skip(str(exc)) from None
    try:
        server.init()
        server.start()
        helper._create_database(server.dsn("postgres"), "sparkify_bench")
        yield server.dsn("sparkify_bench")
    finally:
        server.stop()


def _canonical_rows(ds: Dataset, limit: int) -> list[tuple[Any, ...]]:
    """Typed staging rows, as the classic loader would insert them (parsing not timed)."""
    columns = table_columns("staging_events")
    rows: list[tuple[Any, ...]] = []
    for file_id, path in enumerate(ds.load_files, start=1):
        for raw in parse_events(Path(path).read_bytes(), file_id).data.splitlines():
            record = orjson.loads(raw)
            record["start_time"] = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=record["ts"])
            rows.append(tuple(record[c] for c in columns))
            if len(rows) == limit:
                return rows
    return rows


def _row_by_row(dsn: str, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """The classic approach: one INSERT per row (execute, then executemany), one transaction."""
    import psycopg

    columns = table_columns("staging_events")
    insert = (
        f"INSERT INTO rowwise.staging_events ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    timings = {}
    with psycopg.connect(dsn) as con:
        con.execute("DROP SCHEMA IF EXISTS rowwise CASCADE")
        con.execute("CREATE SCHEMA rowwise")
        con.execute("CREATE TABLE rowwise.staging_events (LIKE bench.staging_events)")
        con.commit()
        for how in ("execute", "executemany"):
            con.execute("TRUNCATE rowwise.staging_events")
            con.commit()
            started = time.perf_counter()
            with con.cursor() as cursor:
                if how == "execute":
                    for row in rows:
                        cursor.execute(insert, row)
                else:
                    cursor.executemany(insert, rows)
            con.commit()
            timings[how] = time.perf_counter() - started
    return timings


def _copy_floor(dsn: str, ds: Dataset) -> dict[str, float]:
    """PostgreSQL taking in the same staged event rows and nothing else: one binary COPY of
    them into a table without indexes. Parsing is done first, untimed."""
    import psycopg

    from sparkify.backends.postgres import PostgresBackend, file_chunks
    from sparkify.parsing import Parser
    from sparkify.sources import LocalSource
    from sparkify.staging import PGCOPY_HEADER, PGCOPY_TRAILER

    with tempfile.TemporaryDirectory(prefix="sparkify-floor-") as tmp:
        source = LocalSource(ds.logs)
        wanted = {str(Path(f).resolve()) for f in ds.load_files}
        files = [f for f in source.list_files() if f.url in wanted]
        ids = {f.url: n for n, f in enumerate(files, start=1)}
        with Parser(Path(tmp), PostgresBackend.capabilities.row_format) as parser:
            parsed = parser.parse(source, "events", files, ids, {}, lambda done, **held: None)
            paths = sorted({r.part for _, r in parsed if r.part is not None})
        with psycopg.connect(dsn) as con:
            con.execute("DROP SCHEMA IF EXISTS floor CASCADE")
            con.execute("CREATE SCHEMA floor")
            con.execute("CREATE TABLE floor.staging_events (LIKE bench.staging_events)")
            con.execute("SET search_path = floor")  # the same COPY statement, this table
            con.commit()
            started = time.perf_counter()
            copy = PostgresBackend.copy_sql("staging_events")
            with con.cursor() as cursor, cursor.copy(copy) as sink:
                sink.write(PGCOPY_HEADER)
                for path in paths:
                    for chunk in file_chunks(path, PostgresBackend.copy_chunk_bytes):
                        sink.write(chunk)
                sink.write(PGCOPY_TRAILER)
            con.commit()
            seconds = time.perf_counter() - started
            count = con.execute("SELECT COUNT(*) FROM floor.staging_events").fetchone()
            con.execute("DROP SCHEMA floor CASCADE")
            con.commit()
    return {"seconds": seconds, "rows": count[0] if count else 0}


def postgres(ds: Dataset, result: ScaleResult, timeout: float) -> None:
    """Full load into PostgreSQL next to, in the same run: PostgreSQL's bare COPY of the same
    staged rows (the floor) and row-by-row INSERTs of a subset (the classic baseline).

    A load that takes longer than ``timeout`` is stopped and reported as a miss: its rate is
    then an upper bound.
    """
    if ds.events > t.POSTGRES_MAX_EVENTS:
        raise Skip(f"the PostgreSQL section runs up to {t.POSTGRES_MAX_EVENTS:,} events")
    with postgres_server() as dsn:
        settings = {
            "WAREHOUSE.BACKEND": "postgres",
            "WAREHOUSE.DSN": dsn,
            "WAREHOUSE.SCHEMA": "bench",
        }
        spec = {
            "settings": settings,
            "songs": ds.songs,
            "logs": ds.logs,
            "until": ds.until.isoformat(),
            "checks": True,
        }
        try:
            load = run_child("etl", spec, timeout=timeout)
        except ChildTimedOut as exc:
            load = {"seconds": exc.seconds, "timed_out": True}
        rows = _canonical_rows(ds, t.ROW_BY_ROW_ROWS)
        timings = _row_by_row(dsn, rows)
        floor = _copy_floor(dsn, ds) if not load.get("timed_out") else None
    checks = load.get("phases", {}).get("checks", 0.0)
    seconds = load["seconds"]  # end to end, quality checks included, as the target counts it
    rate = ds.events / seconds
    per_row = len(rows) / timings["execute"]
    result.details["postgres"] = {
        "etl": load,
        "row_by_row": {"rows": len(rows), **timings},
        "copy_floor": floor,
    }
    judged = ds.events >= 900_000
    stopped = load.get("timed_out")
    result.add(
        Figure(
            "postgres",
            f"load of {ds.events:,} events (staging + transform + quality checks)",
            rate,
            "events/s",
            baseline=f"row-by-row INSERT, {len(rows):,} rows: {per_row:,.0f} rows/s",
            ratio=rate / per_row,
            ratio_label="faster",
            target=f">= {t.POSTGRES_EVENTS_PER_S:,} events/s and "
            f">= {t.POSTGRES_MIN_SPEEDUP:.0f}x (at 1M)",
            met=(rate >= t.POSTGRES_EVENTS_PER_S and rate / per_row >= t.POSTGRES_MIN_SPEEDUP)
            if judged or stopped
            else None,
            headline="postgres",
            note=f"executemany: {len(rows) / timings['executemany']:,.0f} rows/s; "
            + (
                f"STOPPED after {timeout:.0f} s (rate is an upper bound)"
                if stopped
                else f"load {seconds:.2f} s, of which quality checks {checks:.2f} s"
            ),
        )
    )
    cpu = _load_cpu(load)
    if "server" in cpu:
        result.add(
            Figure(
                "postgres",
                "CPU time of the load: main process, parse workers, the PostgreSQL server",
                sum(cpu.values()),
                "CPU-s",
                baseline=f"wall {seconds - checks:.2f} s on {os.cpu_count()} cores",
                ratio=sum(cpu.values()) / (seconds - checks),
                ratio_label="cores busy on average",
                note=f"parse workers {cpu['workers']:.1f}, PostgreSQL server "
                f"{cpu['server']:.1f} (of which transforms {_transform_cpu(load):.1f}), "
                f"main process {cpu['main']:.1f} CPU-s",
            )
        )
    if floor:
        result.add(
            Figure(
                "postgres",
                "load time next to PostgreSQL's bare COPY of the same staged rows",
                seconds,
                "s",
                baseline=f"COPY into a table without indexes: {floor['seconds']:.2f} s "
                f"= {floor['rows'] / floor['seconds']:,.0f} rows/s",
                ratio=seconds / floor["seconds"],
                note="the COPY alone bounds any load of these rows into this server",
                headline="postgres",
            )
        )


def _load_cpu(load: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per process over the load's steps (the quality checks left out)."""
    totals: dict[str, float] = {}
    for step, spent in load.get("phase_cpu", {}).items():
        if step != "checks":
            for process, seconds in spent.items():
                totals[process] = totals.get(process, 0.0) + seconds
    return totals


def _transform_cpu(load: dict[str, Any]) -> float:
    """The PostgreSQL server's CPU seconds in the transform steps (a rebuild's on several
    connections, whose steps end in any order: their split between steps is approximate)."""
    spent = load.get("phase_cpu", {})
    return sum(spent.get(step, {}).get("server", 0.0) for step in TRANSFORM_STEPS)


def s3(ds: Dataset, scale: t.Scale, work: Path, result: ScaleResult) -> None:
    """The same subset loaded from an S3 server (moto, loopback) and from local files."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise Skip(f"moto server is not installed ({exc.name})") from None
    subset = _local_subset(ds, scale, work / "s3-subset")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        key, secret, region = "AKIABENCHMARK0000001", "benchmark-secret", "us-east-1"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name=region,
        )
        # moto keeps its buckets per process, across servers: a bucket per scale, or an
        # earlier scale's objects would be read too
        bucket = f"bench-{scale.name}"
        client.create_bucket(Bucket=bucket)
        for path in sorted(subset.rglob("*.json")):
            client.upload_file(str(path), bucket, str(path.relative_to(subset)))
        remote = {  # the source reads its settings and the AWS chain from the environment
            "SPARKIFY_S3_ENDPOINT_URL": endpoint,
            "SPARKIFY_AWS_REGION": region,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
        }
        runs = {}
        for name, root, extra in (("local", str(subset), {}), ("s3", f"s3://{bucket}", remote)):
            database = work / f"s3-{name}.duckdb"
            database.unlink(missing_ok=True)
            spec = {
                "settings": duckdb_settings(database),
                "songs": f"{root}/song_data",
                "logs": f"{root}/log_data",
            }
            try:
                runs[name] = run_child("etl", spec, env=extra)
            except ChildFailed as exc:  # the object store is still being written
                last = str(exc).strip().splitlines()[-1]
                message = f"the {name} run failed, so the object store does not work yet: {last}"
                raise Skip(message) from None
    finally:
        server.stop()
    lines = runs["local"]["summary"]["lines_read"]
    if runs["s3"]["summary"]["lines_read"] != lines:
        raise RuntimeError(
            "the S3 run read a different number of lines than the local run; files that "
            f"differ (path: local, s3 as size/lines): {_ledger_differences(work)}"
        )
    result.details["s3"] = runs
    result.add(
        Figure(
            "s3",
            f"{scale.s3_days} days + {scale.s3_songs} song files from S3 (moto, loopback)",
            runs["s3"]["seconds"],
            "s",
            baseline=f"local files {runs['local']['seconds']:.3f} s",
            ratio=runs["s3"]["seconds"] / runs["local"]["seconds"],
            note=f"{lines:,} lines",
        )
    )


def _ledger_differences(work: Path) -> dict[str, tuple[object, object]]:
    """Per file, the (size, lines read) the local and the S3 run recorded, where they differ."""
    import duckdb

    ledgers = []
    for name in ("local", "s3"):
        with duckdb.connect(str(work / f"s3-{name}.duckdb"), read_only=True) as con:
            rows = con.execute("SELECT url, size, lines_read FROM etl_files").fetchall()
        # the same file as .../s3-subset/song_data/A/x.json and s3://bench-tiny/song_data/A/x.json
        ledgers.append({re.sub(r"^.*?(?=(song|log)_data/)", "", u): (z, n) for u, z, n in rows})
    local, remote = ledgers
    return {
        path: (local.get(path), remote.get(path))
        for path in sorted(set(local) | set(remote))
        if local.get(path) != remote.get(path)
    }


def _local_subset(ds: Dataset, scale: t.Scale, root: Path) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "log_data"
    logs.mkdir(parents=True)
    for day in ds.load_files[: scale.s3_days]:
        shutil.copy(day, logs / Path(day).name)
    songs = sorted(Path(ds.songs).rglob("*.json"))[: scale.s3_songs]
    for path in songs:
        target = root / "song_data" / path.relative_to(ds.songs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return root

"""One ETL run: plan from the file ledger, parse, stage, rebuild affected star rows, record.

Everything a run changes (staging, star tables, ledger, rejects, the run record) commits in
one transaction or not at all. A failed run is then recorded on its own, after the rollback.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkify.backends import Backend
from sparkify.config import Settings
from sparkify.errors import (
    ConfigError,
    SourceError,
    SparkifyError,
    TooManyRejects,
    TransientWarehouseError,
)
from sparkify.parsing import FileParse, Parser
from sparkify.progress import NO_PROGRESS, ProgressFactory
from sparkify.schema import STAR_TABLES, TABLES
from sparkify.sources import Source, SourceFile, filter_by_date, open_source
from sparkify.staging import KIND_TABLE, row_encoder

DEFAULT_MAX_ERRORS = 1000
RUN_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 0.5


@dataclass(frozen=True)
class EtlOptions:
    songs: str
    logs: str
    full_refresh: bool = False
    since: dt.date | None = None
    until: dt.date | None = None
    max_errors: int = DEFAULT_MAX_ERRORS
    wait_seconds: float = 0.0  # how long to wait for another run to finish
    # [S3]/[AWS] settings for object-store URLs; None: read from the environment and ./dwh.cfg
    settings: Settings | None = field(default=None, compare=False, repr=False)


def _fit(text: str, max_bytes: int) -> str:
    """Cut to a column width counted in bytes (Redshift counts VARCHAR widths in bytes)."""
    return text.encode()[:max_bytes].decode("utf-8", errors="ignore")


@dataclass
class KnownFile:
    file_id: int
    size: int
    version: str
    fingerprint: str


@dataclass
class FileLoad:
    """A file this run reads, and what parsing it gave."""

    file: SourceFile
    kind: str
    file_id: int
    parsed: FileParse


@dataclass
class RunSummary:
    run_id: int
    status: str
    warehouse: str
    files_new: int = 0
    files_changed: int = 0
    files_skipped: int = 0
    lines_read: int = 0
    rows_staged: int = 0
    rows_rejected: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    first_rejects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "warehouse": self.warehouse,
            "files": {
                "new": self.files_new,
                "changed": self.files_changed,
                "skipped": self.files_skipped,
            },
            "lines_read": self.lines_read,
            "rows_staged": self.rows_staged,
            "rows_rejected": self.rows_rejected,
            "tables": self.tables,
            "seconds": round(self.seconds, 3),
            "first_rejects": self.first_rejects,
        }


def ensure_tables(backend: Backend, drop: bool = False) -> None:
    """Create every table that is missing (``drop``: recreate them empty)."""
    if drop:
        backend.run("drop_tables")
    for sql in backend.statements.create_tables():
        backend.execute(sql)


def require_tables(backend: Backend) -> None:
    """For commands that read the warehouse: one clear error when it was never loaded."""
    missing = sorted(set(TABLES) - backend.existing_tables())
    if missing:
        what = "sparkify tables" if len(missing) == len(TABLES) else ", ".join(missing)
        raise ConfigError(
            f"{backend.describe()} has no {what} yet: load data first "
            "(sparkify etl --songs PATH --logs PATH)"
        )


def list_inputs(options: EtlOptions) -> tuple[Source, list[SourceFile], Source, list[SourceFile]]:
    songs = open_source(options.songs, options.settings)
    logs = open_source(options.logs, options.settings)
    song_files = songs.list_files()
    event_files = filter_by_date(logs.list_files(), options.since, options.until)
    if not song_files and not event_files:
        raise SourceError(f"no .json files under {options.songs} or {options.logs}")
    return songs, song_files, logs, event_files


def run_etl(
    backend: Backend,
    options: EtlOptions,
    progress: ProgressFactory = NO_PROGRESS,
    fail_after: Callable[[str], None] | None = None,
) -> RunSummary:
    """Load new and changed files into the warehouse; one transaction for the whole run.

    A transient warehouse failure (connection reset, serialization failure) rolls the run
    back, so it is retried from the start, a bounded number of times. ``fail_after`` is
    called with each step's name; tests use it to inject failures.
    """
    inputs = list_inputs(options)
    for attempt in range(1, RUN_ATTEMPTS + 1):
        try:
            return _run_once(backend, options, inputs, progress, fail_after or _no_failure)
        except TransientWarehouseError:
            if attempt == RUN_ATTEMPTS:
                raise
            time.sleep(RETRY_DELAY_SECONDS * 2**attempt)
            backend.close()
            backend.connect(wait_seconds=options.wait_seconds)
    raise AssertionError("unreachable")


def _run_once(
    backend: Backend,
    options: EtlOptions,
    inputs: tuple[Source, list[SourceFile], Source, list[SourceFile]],
    progress: ProgressFactory,
    fail_after: Callable[[str], None],
) -> RunSummary:
    started = time.monotonic()
    started_at = _utc_now()
    run_id = 0
    try:
        with backend.transaction():
            backend.lock_run()
            ensure_tables(backend)
            run_id = int(
                backend.query("SELECT COALESCE(MAX(run_id), 0) + 1 FROM etl_runs").scalar()
            )
            summary = RunSummary(run_id, "succeeded", backend.describe())
            _load(backend, options, inputs, summary, progress, fail_after)
            summary.seconds = time.monotonic() - started
            _record_run(backend, summary, started_at)
    except TooManyRejects:
        _record_failure(backend, run_id, started_at, "too many rejected records")
        raise
    except SparkifyError as exc:
        _record_failure(backend, run_id, started_at, str(exc))
        raise
    return summary


def _no_failure(step: str) -> None:
    """Default hook between steps: nothing injected."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _load(
    backend: Backend,
    options: EtlOptions,
    inputs: tuple[Source, list[SourceFile], Source, list[SourceFile]],
    summary: RunSummary,
    progress: ProgressFactory,
    fail_after: Callable[[str], None],
) -> None:
    if options.full_refresh:
        backend.run("clear_warehouse")
    with tempfile.TemporaryDirectory(prefix="sparkify-") as tmp:
        loads, version_updates = _read_inputs(
            Parser(Path(tmp), backend.capabilities.row_format),
            _ledger(backend),
            inputs,
            summary,
            progress,
        )
        for load in loads:
            summary.lines_read += load.parsed.lines_read
            summary.rows_staged += load.parsed.rows_staged
            summary.rows_rejected += len(load.parsed.rejects)
        summary.first_rejects = _first_rejects(loads)
        if summary.rows_rejected > options.max_errors:
            raise TooManyRejects(
                f"{summary.rows_rejected} records rejected, more than --max-errors "
                f"{options.max_errors}; the run was rolled back. First rejects:\n  "
                + "\n  ".join(summary.first_rejects)
            )
        fail_after("parse")
        if loads:  # else nothing new: every star row is already a function of unchanged staging
            _stage(backend, loads, Path(tmp), summary.run_id, fail_after)
    # The ledger goes first: the transforms read each staged row's file URL from it.
    _update_ledger(backend, loads, version_updates, summary.run_id)
    fail_after("ledger")
    if loads:
        _transform(backend, fail_after)
    summary.tables = table_counts(backend)


def _read_inputs(
    parser: Parser,
    known: dict[str, KnownFile],
    inputs: tuple[Source, list[SourceFile], Source, list[SourceFile]],
    summary: RunSummary,
    progress: ProgressFactory,
) -> tuple[list[FileLoad], list[tuple[str, str]]]:
    """Plan every file against the ledger and parse the new and changed ones into part files.
    Returns the loads, and the (version, URL) of files whose content was
    unchanged although their change token moved."""
    song_source, song_files, log_source, event_files = inputs
    next_id = max((k.file_id for k in known.values()), default=0) + 1
    loads: list[FileLoad] = []
    version_updates: list[tuple[str, str]] = []
    with parser:  # its worker processes end before staging starts
        for kind, source, files in (
            ("songs", song_source, song_files),
            ("events", log_source, event_files),
        ):
            todo = []
            file_ids: dict[str, int] = {}
            for file in files:
                old = known.get(file.url)
                if old and old.size == file.size and old.version == file.version:
                    summary.files_skipped += 1
                elif old and file.etag and file.etag == old.fingerprint:
                    summary.files_skipped += 1
                    version_updates.append((file.version, file.url))
                else:
                    todo.append(file)
                    if old:
                        file_ids[file.url] = old.file_id
                    else:
                        file_ids[file.url], next_id = next_id, next_id + 1
            loaded = {url: known[url].fingerprint for url in file_ids if url in known}
            description = f"Reading {kind} ({len(todo):,} files)"
            total = sum(f.size for f in todo)
            with progress(description, total=total, unit="bytes") as advance:
                for file, parsed in parser.parse(source, kind, todo, file_ids, loaded, advance):
                    if parsed.unchanged:
                        summary.files_skipped += 1  # touched, same content
                        version_updates.append((file.version, file.url))
                        continue
                    if file.url in known:
                        summary.files_changed += 1
                    else:
                        summary.files_new += 1
                    loads.append(FileLoad(file, kind, file_ids[file.url], parsed))
    return loads, version_updates


def _ledger(backend: Backend) -> dict[str, KnownFile]:
    result = backend.query("SELECT url, file_id, size, version, fingerprint FROM etl_files")
    return {row[0]: KnownFile(row[1], row[2], row[3], row[4]) for row in result.rows}


def _first_rejects(loads: list[FileLoad], limit: int = 5) -> list[str]:
    found = []
    for load in loads:
        for reject in load.parsed.rejects:
            found.append(f"{load.file.url}:{reject.line_no}: {reject.reason}")
            if len(found) == limit:
                return found
    return found


def _write_rejects(path: Path, row_format: str, run_id: int, loads: list[FileLoad]) -> int:
    """The run's rejects as rows of etl_rejects; returns how many."""
    encode = row_encoder("etl_rejects", row_format)
    count = 0
    with path.open("wb") as out:
        for load in loads:
            for reject in load.parsed.rejects:
                out.write(encode([run_id, load.file_id, reject.line_no, reject.reason, reject.raw]))
                count += 1
    return count


def _stage(
    backend: Backend,
    loads: list[FileLoad],
    scratch: Path,
    run_id: int,
    fail_after: Callable[[str], None],
) -> None:
    for step in PREPARE_STEPS:
        backend.run(step)
    run_files = [(load.file_id, load.kind) for load in loads]
    backend.insert_rows("run_files", ("file_id", "kind"), run_files)
    for step in SNAPSHOT_AND_CLEAR_STEPS:
        backend.run(step)
    for kind, table in KIND_TABLE.items():
        parts = [p for load in loads if load.kind == kind and (p := load.parsed.part)]
        if parts:
            backend.load_canonical(table, list(dict.fromkeys(parts)))
    rejects = scratch / "rejects"
    if _write_rejects(rejects, backend.capabilities.row_format, run_id, loads):
        backend.load_canonical("etl_rejects", [rejects])
    fail_after("stage")
    backend.run("snapshot_affected")


PREPARE_STEPS = ("drop_run_tables", "create_run_files", "create_affected")
SNAPSHOT_AND_CLEAR_STEPS = ("snapshot_affected", "delete_staged_rows")
TRANSFORM_STEPS = (
    "affect_late_songs",
    "rank_files",
    "analyze_run_tables",
    "upsert_songplays",
    "upsert_users",
    "upsert_user_levels",
    "upsert_songs",
    "upsert_artists",
    "refresh_time",
)


def _transform(backend: Backend, fail_after: Callable[[str], None]) -> None:
    for step in TRANSFORM_STEPS:
        backend.run(step)
        fail_after(step)
    backend.run("drop_run_tables")  # temporary tables would outlive the run's transaction


def _update_ledger(
    backend: Backend, loads: list[FileLoad], version_updates: list[tuple[str, str]], run_id: int
) -> None:
    for version, url in version_updates:
        backend.execute(
            "UPDATE etl_files SET version = :version WHERE url = :url",
            {"version": version, "url": url},
        )
    if not loads:
        return
    first_runs = dict(
        backend.query("SELECT file_id, first_run_id FROM etl_files").rows  # type: ignore[arg-type]
    )
    backend.execute("DELETE FROM etl_files WHERE file_id IN (SELECT file_id FROM run_files)")
    backend.insert_rows(
        "etl_files",
        (
            "file_id",
            "url",
            "kind",
            "size",
            "version",
            "fingerprint",
            "first_run_id",
            "last_run_id",
            "lines_read",
            "rows_staged",
            "rows_rejected",
        ),
        [
            (
                load.file_id,
                load.file.url,
                load.kind,
                load.file.size,
                load.file.version,
                load.parsed.fingerprint,
                first_runs.get(load.file_id, run_id),
                run_id,
                load.parsed.lines_read,
                load.parsed.rows_staged,
                len(load.parsed.rejects),
            )
            for load in loads
        ],
    )


def table_counts(backend: Backend) -> dict[str, int]:
    sql = " UNION ALL ".join(
        f"SELECT '{table}', COUNT(*) FROM {table}" for table in (*STAR_TABLES, "user_levels")
    )
    return {name: int(count) for name, count in backend.query(sql).rows}


def _record_run(backend: Backend, summary: RunSummary, started_at: dt.datetime) -> None:
    tables = summary.tables
    backend.insert_rows(
        "etl_runs",
        (
            "run_id",
            "started_at",
            "finished_at",
            "status",
            "files_new",
            "files_changed",
            "files_skipped",
            "lines_read",
            "rows_staged",
            "rows_rejected",
            "songplays_rows",
            "users_rows",
            "songs_rows",
            "artists_rows",
            "time_rows",
        ),
        [
            (
                summary.run_id,
                started_at,
                _utc_now(),
                summary.status,
                summary.files_new,
                summary.files_changed,
                summary.files_skipped,
                summary.lines_read,
                summary.rows_staged,
                summary.rows_rejected,
                tables.get("songplays"),
                tables.get("users"),
                tables.get("songs"),
                tables.get("artists"),
                tables.get("time"),
            )
        ],
    )


def _record_failure(backend: Backend, run_id: int, started_at: dt.datetime, message: str) -> None:
    """After a rollback: keep a trace of the failed run, if the warehouse is reachable."""
    if not run_id:
        return
    try:
        with backend.transaction():
            ensure_tables(backend)
            backend.insert_rows(
                "etl_runs",
                ("run_id", "started_at", "finished_at", "status", "message"),
                [(run_id, started_at, _utc_now(), "failed", _fit(message, 1000))],
            )
    except Exception:
        return


def dry_run(backend_cls: type[Backend]) -> list[tuple[str, list[str]]]:
    """Every statement a run executes, in order, grouped by step; nothing connects."""
    statements = backend_cls.dialect_statements()
    steps: list[tuple[str, list[str]]] = [("create tables", statements.create_tables())]
    steps += [(name, statements.get(name)) for name in PREPARE_STEPS]
    steps.append(("record the files of this run", ["INSERT INTO run_files ..."]))
    steps += [(name, statements.get(name)) for name in SNAPSHOT_AND_CLEAR_STEPS]
    steps.append(
        ("load", [backend_cls.load_sql(table) for table in (*KIND_TABLE.values(), "etl_rejects")])
    )
    steps.append(("snapshot_affected", statements.get("snapshot_affected")))
    steps += [(name, statements.get(name)) for name in TRANSFORM_STEPS]
    steps.append(("drop_run_tables", statements.get("drop_run_tables")))
    return steps

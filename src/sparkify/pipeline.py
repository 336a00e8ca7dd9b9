"""One ETL run: plan from the file ledger, parse, stage, rebuild affected star rows, record.

Everything a run changes (staging, star tables, ledger, rejects, the run record) commits in
one transaction or not at all. A failed run is then recorded on its own, after the rollback.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Iterator
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
from sparkify.sources import IgnoredFile, Source, SourceFile, filter_by_date, open_source
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
    ignored: list[IgnoredFile] = field(default_factory=list)  # left out by the listings

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
            "ignored": [item.as_dict() for item in self.ignored],
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
            summary.ignored = [*inputs[0].ignored, *inputs[2].ignored]
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
    plans, version_updates = _plan(_ledger(backend), inputs, summary)
    loads: list[FileLoad] = []
    all_keys = False
    reads_files = any(plan.changed or plan.new for plan in plans)
    if reads_files:
        with tempfile.TemporaryDirectory(prefix="sparkify-") as tmp:
            reading = Reading(
                Parser(Path(tmp), backend.capabilities.row_format),
                summary,
                progress,
                options.max_errors,
                loads,
                version_updates,
            )
            with reading.parser:  # its worker processes end before the transforms start
                all_keys = _read_and_stage(backend, reading, plans, fail_after)
            summary.first_rejects = _first_rejects(loads)
            fail_after("parse")
            _stage_rejects(backend, Path(tmp), summary.run_id, loads)
            fail_after("stage")
        for step in SNAPSHOT_STEPS if loads else ():
            if not (all_keys and step in PARTIAL_RUN_STEPS):
                backend.run(step)
    # The ledger goes first: the transforms read each staged row's file URL from it.
    _update_ledger(backend, loads, version_updates, summary.run_id)
    fail_after("ledger")
    if loads:
        _transform(backend, all_keys, fail_after)
    elif reads_files:  # every file read had the content already loaded
        backend.run("drop_run_tables")
    summary.tables = table_counts(backend)


@dataclass
class KindPlan:
    """The files of one kind a run reads: known ones whose change token moved (their
    content may be the same) and new ones, with the file id each gets."""

    kind: str
    source: Source
    changed: list[SourceFile] = field(default_factory=list)
    new: list[SourceFile] = field(default_factory=list)
    file_ids: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, str] = field(default_factory=dict)  # URL -> fingerprint loaded


def _plan(
    known: dict[str, KnownFile],
    inputs: tuple[Source, list[SourceFile], Source, list[SourceFile]],
    summary: RunSummary,
) -> tuple[list[KindPlan], list[tuple[str, str]]]:
    """Every file against the ledger. Returns the files to read, per kind, and the
    (version, URL) of known files whose change token moved but whose ETag shows the same
    content."""
    song_source, song_files, log_source, event_files = inputs
    next_id = max((k.file_id for k in known.values()), default=0) + 1
    plans = []
    version_updates: list[tuple[str, str]] = []
    for kind, source, files in (
        ("songs", song_source, song_files),
        ("events", log_source, event_files),
    ):
        plan = KindPlan(kind, source)
        for file in files:
            old = known.get(file.url)
            if old and old.size == file.size and old.version == file.version:
                summary.files_skipped += 1
            elif old and file.etag and file.etag == old.fingerprint:
                summary.files_skipped += 1
                version_updates.append((file.version, file.url))
            elif old:
                plan.changed.append(file)
                plan.file_ids[file.url] = old.file_id
                plan.loaded[file.url] = old.fingerprint
            else:
                plan.new.append(file)
                plan.file_ids[file.url], next_id = next_id, next_id + 1
        plans.append(plan)
    return plans, version_updates


@dataclass
class Reading:
    """Parsing a run's files: what it needs, and what it gathers."""

    parser: Parser
    summary: RunSummary
    progress: ProgressFactory
    max_errors: int
    loads: list[FileLoad]  # files whose new content is staged
    version_updates: list[tuple[str, str]]  # (version, URL) of files touched, same content

    def parse(self, plan: KindPlan, files: list[SourceFile], verb: str) -> Iterator[FileLoad]:
        """Parse ``files``; yields (and keeps) the loads of those whose content is not
        loaded yet. More rejects than ``max_errors`` stop the run at once."""
        summary = self.summary
        description = f"{verb} {plan.kind} ({len(files):,} files)"
        with self.progress(description, total=sum(f.size for f in files), unit="bytes") as step:
            parsed_files = self.parser.parse(
                plan.source, plan.kind, files, plan.file_ids, plan.loaded, step
            )
            for file, parsed in parsed_files:
                if parsed.unchanged:
                    summary.files_skipped += 1
                    self.version_updates.append((file.version, file.url))
                    continue
                if file.url in plan.loaded:
                    summary.files_changed += 1
                else:
                    summary.files_new += 1
                summary.lines_read += parsed.lines_read
                summary.rows_staged += parsed.rows_staged
                summary.rows_rejected += len(parsed.rejects)
                load = FileLoad(file, plan.kind, plan.file_ids[file.url], parsed)
                self.loads.append(load)
                if summary.rows_rejected > self.max_errors:
                    raise TooManyRejects(
                        f"{summary.rows_rejected} records rejected, more than --max-errors "
                        f"{self.max_errors}; the run was rolled back. First rejects:\n  "
                        + "\n  ".join(_first_rejects(self.loads))
                    )
                yield load


def _read_and_stage(
    backend: Backend, reading: Reading, plans: list[KindPlan], fail_after: Callable[[str], None]
) -> bool:
    """Parse the run's files and stage their rows. Returns whether every staged event
    comes from this run's files (then every play and user is affected).

    Known files come first: their content may turn out unchanged, and the old rows of
    those that changed must leave staging before any new row arrives. The new files' rows
    are then bulk-loaded while they are parsed, each part file as soon as it is complete.
    """
    for step in PREPARE_STEPS:
        backend.run(step)
    loads = reading.loads
    for plan in plans:
        if plan.changed:
            for _ in reading.parse(plan, plan.changed, "Re-reading"):
                pass  # parse() keeps the loads; nothing to stream yet
    if loads:
        _record_run_files(backend, loads)
        for step in SNAPSHOT_AND_CLEAR_STEPS:
            backend.run(step)
    [staged_before] = backend.statements.get("count_other_staged_events")
    all_keys = not backend.query(staged_before).scalar()
    for plan in plans:
        parts = {p: None for load in loads if load.kind == plan.kind and (p := load.parsed.part)}
        if not (parts or plan.new):
            continue
        first_new = len(loads)
        with backend.bulk_load(KIND_TABLE[plan.kind]) as add:
            for part in parts:
                add(part)
            for load in reading.parse(plan, plan.new, "Reading"):
                new_part = load.parsed.part
                if new_part and new_part not in parts:  # a task's part file is complete
                    parts[new_part] = None
                    add(new_part)
                    fail_after("bulk_load")
        _record_run_files(backend, loads[first_new:])
    order = {plan.kind: n for n, plan in enumerate(plans)}
    loads.sort(key=lambda load: (order[load.kind], load.file.url))
    return all_keys


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
    rows = bytearray()
    count = 0
    for load in loads:
        for reject in load.parsed.rejects:
            encode([run_id, load.file_id, reject.line_no, reject.reason, reject.raw], rows)
            count += 1
    path.write_bytes(rows)
    return count


def _record_run_files(backend: Backend, loads: list[FileLoad]) -> None:
    rows = [(load.file_id, load.kind) for load in loads]
    backend.insert_rows("run_files", ("file_id", "kind"), rows)


def _stage_rejects(backend: Backend, scratch: Path, run_id: int, loads: list[FileLoad]) -> None:
    rejects = scratch / "rejects"
    if _write_rejects(rejects, backend.capabilities.row_format, run_id, loads):
        backend.load_canonical("etl_rejects", [rejects])


PREPARE_STEPS = ("create_run_files", "create_affected")
SNAPSHOT_AND_CLEAR_STEPS = (
    "snapshot_affected_events",
    "snapshot_affected_songs",
    "delete_staged_rows",
)
# Once everything is staged: statistics first, the snapshots and transforms join the rows.
SNAPSHOT_STEPS = ("analyze_staging", "snapshot_affected_songs", "snapshot_affected_events")
# Steps that only a run affecting some of the plays and users needs.
PARTIAL_RUN_STEPS = frozenset({"snapshot_affected_events", "affect_late_songs"})
TRANSFORM_STEPS = (
    "affect_late_songs",
    "rank_files",
    "analyze_run_tables",
    "upsert_songplays",
    "collect_user_changes",
    "upsert_users",
    "upsert_user_levels",
    "upsert_songs",
    "upsert_artists",
    "refresh_time",
)


def _transform(backend: Backend, all_keys: bool, fail_after: Callable[[str], None]) -> None:
    """Rebuild the affected keys; ``all_keys``: every play and user is affected."""
    for step in TRANSFORM_STEPS:
        if not (all_keys and step in PARTIAL_RUN_STEPS):
            backend.run(step, all_keys=all_keys)
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
    """Every statement a run that loads files executes, in order, grouped by step; nothing
    connects. Lines marked ``AFFECTED_KEYS_ONLY`` are shown; a run that affects every key
    leaves them out, with the snapshot of the events and affect_late_songs."""
    statements = backend_cls.dialect_statements()
    steps: list[tuple[str, list[str]]] = [("create tables", statements.create_tables())]
    steps += [(name, statements.get(name)) for name in PREPARE_STEPS]
    steps.append(("record the known files that changed", ["INSERT INTO run_files ..."]))
    steps += [(name, statements.get(name)) for name in SNAPSHOT_AND_CLEAR_STEPS]
    steps.append(("count_other_staged_events", statements.get("count_other_staged_events")))
    steps.append(
        ("load", [backend_cls.load_sql(table) for table in (*KIND_TABLE.values(), "etl_rejects")])
    )
    steps.append(("record the new files", ["INSERT INTO run_files ..."]))
    steps += [(name, statements.get(name)) for name in SNAPSHOT_STEPS]
    steps.append(("update the ledger", ["DELETE FROM etl_files ...", "INSERT INTO etl_files ..."]))
    steps += [(name, statements.get(name)) for name in TRANSFORM_STEPS]
    steps.append(("drop_run_tables", statements.get("drop_run_tables")))
    return steps

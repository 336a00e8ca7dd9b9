"""One ETL run: plan from the file ledger, parse, stage, rebuild affected star rows, record.

Everything a run changes (staging, star tables, ledger, rejects, the run record) commits in
one transaction or not at all. A failed run is then recorded on its own, after the rollback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import gc
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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
    WarehouseError,
)
from sparkify.parsing import FileParse, Parser, scratch_folder
from sparkify.plan import ADDED_COLUMNS, RUN_PLAN, Step, build_lanes
from sparkify.progress import NO_PROGRESS, ProgressFactory
from sparkify.rebuild import Build, drop_dead_builds
from sparkify.reconcile import KnownFile, Move, find_moves, vanished
from sparkify.records import count_unknown
from sparkify.schema import TABLES
from sparkify.sources import IgnoredFile, Source, SourceFile, filter_by_date, open_source
from sparkify.staging import row_encoder
from sparkify.tables import REBUILT

DEFAULT_MAX_ERRORS = 1000
UNKNOWN_FIELDS_BYTES = 1000  # etl_runs.unknown_fields
RUN_ATTEMPTS = 3
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # a full disk or quota
RETRY_DELAY_SECONDS = 0.5
# No event is older (ts is checked to be >= 0): where a run reads whole histories from.
HISTORY_START = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class EtlOptions:
    songs: str
    logs: str
    full_refresh: bool = False
    since: dt.date | None = None
    until: dt.date | None = None
    max_errors: int = DEFAULT_MAX_ERRORS
    wait_seconds: float = 0.0  # how long to wait for another run to finish
    prune: bool = False  # remove the rows of known files that disappeared from the input
    # [S3]/[AWS] settings for object-store URLs; None: read from the environment and ./dwh.cfg
    settings: Settings | None = field(default=None, compare=False, repr=False)


def _fit(text: str, max_bytes: int) -> str:
    """Cut to a column width counted in bytes (Redshift counts VARCHAR widths in bytes)."""
    return text.encode()[:max_bytes].decode("utf-8", errors="ignore")


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
    moved: list[Move] = field(default_factory=list)  # known content at a new URL
    missing: list[KnownFile] = field(default_factory=list)  # known files no longer listed
    pruned: bool = False  # the rows of the missing files were removed
    # per kind, the fields of staged records that no column holds, counted by name
    unknown_fields: dict[str, Counter[str]] = field(default_factory=dict)

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
            "moved": [{"from": m.known.url, "to": m.file.url} for m in self.moved],
            "missing": [known.url for known in self.missing],
            "pruned": self.pruned,
            "unknown_fields": self.unknown_field_counts(),
        }

    def unknown_field_counts(self) -> dict[str, dict[str, int]]:
        """Per kind, the unknown fields, the most frequent first."""
        return {
            kind: dict(counts.most_common())
            for kind, counts in sorted(self.unknown_fields.items())
            if counts
        }


def ensure_tables(backend: Backend, drop: bool = False) -> None:
    """Create every table that is missing (``drop``: recreate them all empty), and add the
    columns and the physical design a warehouse of an older version lacks.

    Outside a transaction, two runs may start at once on a new warehouse: a CREATE that
    fails because the other run created the table meanwhile is not an error.
    """
    existing = set() if drop else backend.existing_tables()
    columns = set() if drop else _added_columns(backend)
    ddl = backend.statements.table_ddl()
    missing = {table: sqls for table, sqls in ddl.items() if table not in existing}
    if missing:
        with backend.writing():
            if drop:
                backend.run("drop_tables")
            for table, sqls in missing.items():
                for sql in sqls:
                    try:
                        backend.execute(sql)
                    except WarehouseError:
                        if table not in backend.existing_tables():
                            raise
    for table, column, name, _ in ADDED_COLUMNS:
        if table in existing and (table, column) not in columns:
            try:
                with backend.transaction():  # the column with its values, or neither
                    backend.run(name)
            except WarehouseError:  # another run added it meanwhile
                if (table, column) not in _added_columns(backend):
                    raise
    if not drop:
        upgrade_design(backend, existing)


def upgrade_design(backend: Backend, existing: set[str]) -> None:
    """Give the tables in ``existing`` the declared physical design they lack (made by an
    earlier version): each statement of ``Statements.design`` whose result the catalog does
    not show. Outside the run's transaction, once per warehouse."""
    design = backend.statements.design()
    if not design:
        return
    present = _physical_design(backend)
    for shown, sql in design.items():
        if shown.split()[0] in existing and shown not in present:
            with backend.writing():
                try:
                    backend.execute(sql)
                except WarehouseError:  # another run did it meanwhile
                    if shown not in _physical_design(backend):
                        raise


def _physical_design(backend: Backend) -> set[str]:
    [sql] = backend.statements.get("physical_design")
    items: dict[str, list[str]] = {}
    for table, item in backend.query(sql).rows:
        items.setdefault(table, []).append(item)
    return {f"{table} {', '.join(parts)}" for table, parts in items.items()}


def _added_columns(backend: Backend) -> set[tuple[str, str]]:
    [sql] = backend.statements.get("added_columns")
    return {(row[0], row[1]) for row in backend.query(sql).rows}


@contextmanager
def holding_run_lock(backend: Backend) -> Iterator[None]:
    """A transaction that holds the run lock first, as a run's does (``plan.RUN_PLAN``:
    the wait bounded before BEGIN, reset once the lock is held or after a rollback)."""
    backend.run("lock_wait", backend.lock_params())
    try:
        with backend.transaction():
            backend.lock_run()
            backend.run("lock_wait_end")
            yield
    except BaseException:
        backend.run("lock_wait_end")
        raise


def require_tables(backend: Backend) -> None:
    """For commands that read the warehouse: one clear error when it was never loaded."""
    missing = sorted(set(TABLES) - backend.existing_tables())
    if missing:
        what = "sparkify tables" if len(missing) == len(TABLES) else ", ".join(missing)
        raise ConfigError(
            f"{backend.describe()} has no {what} yet: load data first "
            "(sparkify etl --songs PATH --logs PATH)"
        )


Inputs = tuple[Source, list[SourceFile], Source, list[SourceFile]]  # songs, then events


def list_inputs(options: EtlOptions) -> Inputs:
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
    called with each checkpoint's name (see ``sparkify.plan``); tests use it to inject
    failures.
    """
    with cyclic_gc_paused():
        inputs = list_inputs(options)
        for attempt in range(1, RUN_ATTEMPTS + 1):
            try:
                return Run(backend, options, inputs, progress, fail_after or _no_failure).perform()
            except TransientWarehouseError:
                if attempt == RUN_ATTEMPTS:
                    raise
                time.sleep(RETRY_DELAY_SECONDS * 2**attempt)
                backend.close()
                backend.connect(wait_seconds=options.wait_seconds)
    raise AssertionError("unreachable")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a run (and resumed after it, if it was
    on). A run keeps a few objects per file alive until it ends (the listing, each file's
    parse, its ledger row); the collector walked them all again each time they grew by a
    quarter: 0.1 to 0.3 CPU-seconds of a run of 15,000 song files. Reference counting still
    frees at once what is not in a reference cycle (the run's per-file and per-line objects
    are not); a cycle made meanwhile waits for the end of the run. Parse workers turn the
    collector back on (``parsing._start_worker``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _no_failure(step: str) -> None:
    """Default hook between steps: nothing injected."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Run:
    """One attempt at a run: walks ``RUN_PLAN``, one method per kind of step."""

    def __init__(
        self,
        backend: Backend,
        options: EtlOptions,
        inputs: Inputs,
        progress: ProgressFactory,
        fail_after: Callable[[str], None],
    ) -> None:
        self.backend = backend  # the connection the run's statements go to
        self.main = backend  # the one that holds the run's transaction
        self.options = options
        self.inputs = inputs
        self.progress = progress
        self.fail_after = fail_after
        self.started = time.monotonic()
        self.started_at = _utc_now()
        self.summary = RunSummary(0, "succeeded", backend.describe())
        self.summary.ignored = [*inputs[0].ignored, *inputs[2].ignored]
        self.plans: list[KindPlan] = []
        self.loads: list[FileLoad] = []  # files whose new content is staged
        self.version_updates: list[tuple[str, str]] = []  # (version, URL): same content
        self.moves: list[Move] = []  # known files found at new URLs
        self.pruned: list[KnownFile] = []  # vanished files whose rows --prune removes
        self.all_keys = False  # every staged event comes from this run's files
        self.model_unbuilt = False  # user_events is empty, events of other files are staged
        self.can_build = False  # the warehouse allows a rebuild (can_build)
        self.rebuilding = False  # the tables are built anew and swapped in (sparkify.rebuild)
        self.build: Build | None = None
        self.first_runs: dict[int, int] = {}
        # The ranges of values that bound the transforms' reads (see sql/common.sql).
        self.key_ranges: dict[str, Any] = {"from_time": HISTORY_START}
        self._run_file_facts: tuple[tuple[int, ...], tuple[int | None, int | None, bool]]
        self._run_file_facts = (), (None, None, False)
        self.scratch = ExitStack()  # the part files' folder, until the run ends
        self.parsing = ExitStack()  # the parse workers, until the last file is parsed
        self.scratch_dir = Path()
        self.reading: Reading | None = None
        self.first_new = 0  # where the new files of the kind being loaded start in loads
        self.failure = ""

    def perform(self) -> RunSummary:
        backend = self.backend
        try:
            with self.scratch, self.naming_scratch():
                self.walk(RUN_PLAN.before)
                with backend.transaction(), self.building():
                    self.walk(RUN_PLAN.transaction)
        except SparkifyError as exc:
            self.failure = (
                "too many rejected records" if isinstance(exc, TooManyRejects) else str(exc)
            )
            self.record_failure()
            raise
        return self.summary

    @contextmanager
    def naming_scratch(self) -> Iterator[None]:
        """A full disk while writing part files: say where they go (TMPDIR)."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None or exc.errno not in NO_ROOM or not self.scratch_dir.name:
                raise
            raise SparkifyError(
                f"no room for temporary files in {self.scratch_dir} ({exc.strerror}); free "
                "space there or point TMPDIR to a folder with room"
            ) from None

    @contextmanager
    def building(self) -> Iterator[None]:
        """Inside the run's transaction: a rebuild that fails is discarded before the
        transaction ends (while the run lock is held); its connections close in any case."""
        try:
            yield
        except BaseException:
            if self.build is not None:
                self.build.discard()
            raise
        finally:
            if self.build is not None:
                self.build.close()
            self.backend = self.main

    def walk(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            if all(self.holds(condition) for condition in step.when):
                getattr(self, f"do_{step.does}")(step)
            if step.checkpoint:
                self.fail_after(step.checkpoint)

    def holds(self, condition: str) -> bool:
        """Whether a condition of ``plan.CONDITIONS`` holds at this point of the run."""
        loads = self.loads
        by_kind = {plan.kind: plan for plan in self.plans}
        match condition.split("_", 1):
            case ["stage", kind]:
                return bool(by_kind[kind].new or any(load.kind == kind for load in loads))
            case ["new", kind]:
                return bool(by_kind[kind].new)
        moves_or_prunes = bool(self.moves or self.pruned)
        facts = {
            "full_refresh": lambda: self.options.full_refresh,
            "reads_files": lambda: (
                moves_or_prunes or any(plan.changed or plan.new for plan in self.plans)
            ),
            "known_changed": lambda: bool(loads or self.pruned),  # only known files parsed yet
            "rejects": lambda: any(load.parsed.rejects for load in loads),
            "moves": lambda: bool(self.moves),
            "loads": lambda: bool(loads) or moves_or_prunes,
            "some_keys": lambda: not self.all_keys,
            "model_unbuilt": lambda: self.model_unbuilt,
            "songs_affected": lambda: self.run_file_facts()[2],
            "version_updates": lambda: bool(self.version_updates),
            "numbered": lambda: bool(self.summary.run_id),
            "parallel_build": lambda: self.backend.capabilities.parallel_build,
            "rebuild": lambda: self.rebuilding,
            "in_place": lambda: not self.rebuilding,
        }
        return bool(facts[condition]())

    # -- the kinds of step -----------------------------------------------------------------
    def do_tables(self, step: Step) -> None:
        ensure_tables(self.backend)

    def do_land(self, step: Step) -> None:
        """Before the run's transaction: a backend that reads raw files itself may land the
        listed files that the ledger does not hold yet (Redshift, from several sessions)."""
        songs, song_files, logs, event_files = self.inputs
        self.backend.land_raw_files(
            [(songs, song_files), (logs, event_files)], self.options.max_errors, self.progress
        )

    def run_files(self) -> list[tuple[int, str]]:
        """(file_id, kind) of the files whose staged rows this run replaces or re-ranks, as
        far as they are known yet: the rows of run_files."""
        return [
            *((load.file_id, load.kind) for load in self.loads),
            *((known.file_id, known.kind) for known in self.pruned),
            *((move.known.file_id, move.known.kind) for move in self.moves),
        ]

    def run_file_facts(self) -> tuple[int | None, int | None, bool]:
        """The lowest and highest file id of ``run_files`` and whether a song file is among
        them; worked out again only when a list has grown (they only grow: every statement
        of the run asks, and a first load has one file per song)."""
        sizes = (len(self.loads), len(self.pruned), len(self.moves))
        if self._run_file_facts[0] != sizes:
            rows = self.run_files()
            file_ids = [file_id for file_id, _ in rows]
            songs = any(kind == "songs" for _, kind in rows)
            self._run_file_facts = (
                sizes,
                (min(file_ids, default=None), max(file_ids, default=None), songs),
            )
        return self._run_file_facts[1]

    def ranges(self) -> dict[str, Any]:
        """The bound values of the statements' ranges (those a statement names are sent)."""
        low_file, high_file, _ = self.run_file_facts()
        return {"low_file": low_file, "high_file": high_file, **self.key_ranges}

    def removes_events(self) -> bool:
        """Whether the run takes staged events away: changed or pruned event files."""
        changed = {url for plan in self.plans if plan.kind == "events" for url in plan.loaded}
        return any(load.file.url in changed for load in self.loads) or any(
            known.kind == "events" for known in self.pruned
        )

    def do_run(self, step: Step) -> None:
        backend = self.backend
        if step.name == "lock_wait":
            backend.run(step.name, backend.lock_params())
        else:
            backend.run(step.name, self.ranges(), all_keys=self.all_keys and step.all_keys)

    def do_lock(self, step: Step) -> None:
        self.backend.lock_run()

    def do_dead_builds(self, step: Step) -> None:
        drop_dead_builds(self.backend)

    def do_build(self, step: Step) -> None:
        """From here on, the run's statements go to the first build connection."""
        self.build = Build(self.main)
        self.backend = self.build.start()

    def do_lanes(self, step: Step) -> None:
        assert self.build is not None
        self.build.transform(build_lanes(type(self.main)), self.on_build_connection)

    def on_build_connection(self, backend: Backend, step: Step) -> None:
        """One step of ``build_lanes`` (in a thread of its own, on its connection)."""
        if step.does == "insert":
            backend.insert_rows(step.table, step.columns, self.rows(step))
        else:
            backend.run(step.name, {"from_time": HISTORY_START}, all_keys=True)
        if step.checkpoint:
            self.fail_after(step.checkpoint)

    def do_swap(self, step: Step) -> None:
        assert self.build is not None
        self.backend = self.main
        self.build.swap()

    def do_query(self, step: Step) -> None:
        [sql] = self.backend.statements.get(step.name)
        params = {"tables": list(REBUILT)} if step.name == "can_build" else None
        rows = self.backend.query(sql, params).rows
        summary = self.summary
        if step.name == "next_run_id":
            summary.run_id = int(rows[0][0])
        elif step.name == "can_build":
            self.can_build = bool(rows[0][0])
            self.rebuilding = self.can_build and self.options.full_refresh
        elif step.name == "read_ledger":
            known = {row[0]: KnownFile.from_row(row) for row in rows}
            self.rebuilding = self.can_build and (self.options.full_refresh or not known)
            if self.rebuilding:  # every file is loaded anew, as after clear_warehouse
                known = {}
            self.plans, self.version_updates = _plan(known, self.inputs, summary)
            self.follow_the_source(known)
        elif step.name == "count_other_staged_events":
            self.all_keys = not rows[0][0]
        elif step.name == "count_user_events":
            self.model_unbuilt = not rows[0][0]
        elif step.name == "affected_bounds":
            low_play, high_play, low_session, high_session, from_time = rows[0]
            self.key_ranges.update(
                low_play=low_play,
                high_play=high_play,
                low_session=low_session,
                high_session=high_session,
                # A user whose latest events go is rebuilt from their first event.
                from_time=HISTORY_START if self.removes_events() else from_time,
            )
        elif step.name == "time_bounds":
            self.key_ranges.update(low_time=rows[0][0], high_time=rows[0][1])
        elif step.name == "read_first_runs":
            self.first_runs = {int(file_id): int(first) for file_id, first in rows}
        elif step.name == "table_counts":
            summary.tables = {name: int(count) for name, count in rows}

    def follow_the_source(self, known: dict[str, KnownFile]) -> None:
        """Known files that are no longer listed: those whose content turns up at a new URL
        have moved (their new URL is not read again); the others are missing, and pruned
        on request."""
        listed = {"songs": self.inputs[1], "events": self.inputs[3]}
        gone = vanished(known.values(), listed, self.options.since, self.options.until)
        for plan in self.plans:
            moves = find_moves(plan.kind, plan.source, plan.new, gone) if gone else []
            moved = {move.file.url for move in moves}
            plan.new = [file for file in plan.new if file.url not in moved]
            self.moves += moves
        self.summary.moved = sorted(self.moves, key=lambda move: move.file.url)
        self.summary.missing = gone
        if self.options.prune:
            self.pruned, self.summary.pruned = gone, bool(gone)

    def do_parse(self, step: Step) -> None:
        """Start the parse workers, then parse the known files whose token moved: their
        content may be the same, and the old rows of those that changed must leave
        staging before any new row arrives."""
        self.scratch_dir = self.scratch.enter_context(scratch_folder())
        self.scratch.enter_context(self.parsing)
        parser = self.parsing.enter_context(
            self.backend.file_parser(self.scratch_dir, self.options.max_errors)
        )
        self.reading = Reading(
            parser,
            self.summary,
            self.progress,
            self.options.max_errors,
            self.loads,
            self.version_updates,
        )
        for plan in self.plans:
            if plan.changed:
                for _ in self.reading.parse(plan, plan.changed, "Re-reading"):
                    pass  # parse() keeps the loads; nothing to stream yet

    def do_load(self, step: Step) -> None:
        if step.table == "etl_rejects":
            rejects = self.scratch_dir / "rejects"
            row_format = self.backend.capabilities.row_format
            _write_rejects(rejects, row_format, self.summary.run_id, self.loads)
            self.backend.load_canonical("etl_rejects", [rejects])
            return
        assert self.reading is not None
        plan = next(plan for plan in self.plans if plan.kind == step.kind)
        parts = {
            p: None for load in self.loads if load.kind == plan.kind and (p := load.parsed.part)
        }
        self.first_new = len(self.loads)
        with self.backend.bulk_load(step.table) as add:
            for part in parts:
                add(part)
            for load in self.reading.parse(plan, plan.new, "Reading"):
                new_part = load.parsed.part
                if new_part and new_part not in parts:  # a task's part file is complete
                    parts[new_part] = None
                    add(new_part)
                    self.fail_after("bulk_load")

    def do_end_parse(self, step: Step) -> None:
        """The parse workers end before the transforms start."""
        self.parsing.close()
        order = {plan.kind: n for n, plan in enumerate(self.plans)}
        self.loads.sort(key=lambda load: (order[load.kind], load.file.url))
        self.summary.first_rejects = _first_rejects(self.loads)

    def do_insert(self, step: Step) -> None:
        self.backend.insert_rows(step.table, step.columns, self.rows(step))

    def rows(self, step: Step) -> list[tuple[Any, ...]]:
        """The rows an insert step writes."""
        summary, run_id = self.summary, self.summary.run_id
        if step.name == "record_build_files":  # a rebuild's: every file it loads
            return [(load.file_id, load.kind) for load in self.loads]
        if step.name == "record_changed_files":
            changed = [(load.file_id, load.kind) for load in self.loads]
            return changed + [(known.file_id, known.kind) for known in self.pruned]
        if step.name == "record_file_versions":
            return [(url, version) for version, url in self.version_updates]
        if step.name == "record_moved_files":
            return [(move.known.file_id, move.known.kind) for move in self.moves]
        if step.table == "run_files":  # the new files of one kind, just loaded
            return [(load.file_id, load.kind) for load in self.loads[self.first_new :]]
        if step.name == "record_files":
            return [
                (
                    load.file_id,
                    load.file.url,
                    load.kind,
                    load.file.size,
                    load.file.version,
                    load.parsed.fingerprint,
                    self.first_runs.get(load.file_id, run_id),
                    run_id,
                    load.parsed.lines_read,
                    load.parsed.rows_staged,
                    len(load.parsed.rejects),
                )
                for load in self.loads
            ] + [move.ledger_row() for move in self.moves]
        if step.name == "record_failed_rejects":  # the files are not in the ledger: URLs
            return [
                (run_id, load.file.url, reject.line_no, reject.reason, reject.raw)
                for load in self.loads
                for reject in load.parsed.rejects
            ]
        if step.name == "record_failure":
            return [(run_id, self.started_at, _utc_now(), "failed", _fit(self.failure, 1000))]
        assert step.name == "record_run", step.name
        summary.seconds = time.monotonic() - self.started
        tables = summary.tables
        return [
            (
                run_id,
                self.started_at,
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
                _unknown_fields_text(summary.unknown_field_counts()),
            )
        ]

    def record_failure(self) -> None:
        """After the rollback: keep a trace of the failed run and the records it rejected
        (so the input can be fixed), then end the lock's wait bound; as far as the warehouse
        is reachable."""
        with contextlib.suppress(Exception):
            if any(all(self.holds(c) for c in step.when) for step in RUN_PLAN.failure):
                with self.backend.transaction():
                    self.walk(RUN_PLAN.failure)
        with contextlib.suppress(Exception):
            self.walk(RUN_PLAN.after_failure)


def _unknown_fields_text(counts: dict[str, dict[str, int]]) -> str | None:
    """The unknown fields as JSON text for etl_runs, within its 1,000 bytes: the least
    frequent names are left out first."""
    if not counts:
        return None
    names = [(n, kind, name) for kind, fields in counts.items() for name, n in fields.items()]
    names.sort(key=lambda item: -item[0])
    while True:
        kept: dict[str, dict[str, int]] = {kind: {} for kind in counts}
        for n, kind, name in names:
            kept[kind][name] = n
        text = json.dumps(kept, ensure_ascii=False)
        if len(text.encode()) <= UNKNOWN_FIELDS_BYTES:
            return text
        names.pop()


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
    inputs: Inputs,
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
            if old and old.has_content_of(file):
                summary.files_skipped += 1
                if (old.size, old.version) != (file.size, file.version):
                    version_updates.append((file.version, file.url))  # the same ETag
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
                if parsed.unknown_fields:
                    counted = summary.unknown_fields.setdefault(plan.kind, Counter())
                    count_unknown(counted, parsed.unknown_fields.items())
                load = FileLoad(file, plan.kind, plan.file_ids[file.url], parsed)
                self.loads.append(load)
                if summary.rows_rejected > self.max_errors:
                    raise TooManyRejects(
                        f"{summary.rows_rejected} records rejected, more than --max-errors "
                        f"{self.max_errors}; the run was rolled back and "
                        f"`sparkify rejects --run {summary.run_id}` lists them. First rejects:\n  "
                        + "\n  ".join(_first_rejects(self.loads))
                    )
                yield load


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

"""The declared plan of one ETL run: its steps, in order, and the statements each sends.

``pipeline`` walks this list to run the ETL and ``dry_run`` renders it for ``sparkify sql``,
so what a run sends and what the dry run prints come from one declaration. A step names
what it does (``does``) and, for SQL steps, the named statement in ``sql/*.sql`` it runs;
``when`` names the conditions (``CONDITIONS``) under which it runs at all. Statements are
shown as the driver receives them: bound values as the driver's placeholders.

The run lock is the first statement of the run's transaction; the tables are created and
the lock's wait is bounded before it (see ``Backend.lock_run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sparkify.backends.base import Backend, Sent, has_parameters
from sparkify.staging import KIND_TABLE

# What must hold for a step (or one of its statements) to run, as the dry run explains it.
CONDITIONS = {
    "tables_missing": "the warehouse lacks tables (a first run)",
    "old_etl_runs": "etl_runs lacks unknown_fields (a warehouse of an older version)",
    "full_refresh": "--full-refresh",
    "reads_files": "files are new, their change token moved, or known files moved or are pruned",
    "known_changed": "the content of files already in the ledger changed, or --prune removes "
    "files that disappeared",
    "stage_songs": "song files are new, or their content changed",
    "new_songs": "song files are new",
    "stage_events": "event files are new, or their content changed",
    "new_events": "event files are new",
    "rejects": "records were rejected",
    "moves": "known files turned up at new URLs (recognised by their content)",
    "loads": "new content was staged, or files moved or were pruned",
    "some_keys": "events of other files are staged: only some plays and users are affected",
    "model_unbuilt": "user_events is empty (a warehouse loaded by a version without the event "
    "model): every staged session is affected",
    "version_updates": "known files' change tokens moved but their content did not",
    "parsed_rows": "sparkify parsed files of this kind (local files, or s3:// files under "
    "[S3] RAW_COPY_MIN_BYTES)",
    "split_parts": "the parsed rows are big enough to split into several files (16 MiB of "
    "JSON lines), on a provisioned cluster (Serverless shows no slices)",
    "raw_files": "Redshift reads raw s3:// files of this kind itself (at least [S3] "
    "RAW_COPY_MIN_BYTES): while they are read, before the kind is loaded",
    "raw_landing": "Redshift reads raw s3:// files itself (at least [S3] RAW_COPY_MIN_BYTES) "
    "and some listed ones are not in the ledger with their ETag",
    "stale_landings": "landing tables that no listed file needs (left by a failed or killed "
    "run, or landed by another run meanwhile), once each",
    "each_landing": "once per raw file not landed yet, by one of several sessions at once "
    "([CLUSTER] RAW_COPY_SESSIONS), each in a transaction of its own",
    "landing_gone": "the file's landing table is gone (another run dropped it): landed in "
    "the run's transaction",
    "first_raw_files": "the first raw files of the run",
    "each_raw_file": "once per raw file",
    "copy_refused": "COPY loaded fewer rows than were staged (the run then fails)",
    "load_error_detail": "the catalog has sys_load_error_detail",
    "no_load_error_detail": "the catalog lacks sys_load_error_detail",
    "numbered": "the run failed after it got its run_id",
}

Does = Literal["tables", "land", "run", "query", "lock", "parse", "end_parse", "load", "insert"]


@dataclass(frozen=True)
class Step:
    """One step of a run. ``name`` is the named statement a ``run``/``query``/``lock``
    step executes; ``table``/``columns`` say what a ``load``/``insert`` step fills."""

    name: str
    does: Does = "run"
    when: tuple[str, ...] = ()
    kind: str = ""  # songs or events, for the steps that parse, load or record files
    table: str = ""
    columns: tuple[str, ...] = ()
    all_keys: bool = False  # its "-- affected keys only" lines go when every key is affected
    checkpoint: str = ""  # the name ``fail_after`` is called with once the step is passed


RUN_FILES = ("file_id", "kind")
LEDGER_COLUMNS = (
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
)
RUN_COLUMNS = (
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
    "unknown_fields",
)
FAILURE_COLUMNS = ("run_id", "started_at", "finished_at", "status", "message")
FAILED_REJECT_COLUMNS = ("run_id", "url", "line_no", "reason", "raw")
# The transforms, in order; those only a run affecting some of the keys needs are marked.
TRANSFORMS = (
    ("affect_late_songs", True),
    ("rank_files", False),
    ("analyze_run_tables", False),
    ("upsert_songplays", False),
    ("collect_user_changes", False),
    ("upsert_users", False),
    ("upsert_user_levels", False),
    ("upsert_songs", False),
    ("upsert_artists", False),
    ("refresh_time", False),
    ("upsert_user_events", False),
    ("analyze_user_events", False),
    ("upsert_sessions", False),
    ("upsert_subscription_changes", False),
    ("upsert_song_feedback", False),
    ("refresh_user_agents", False),
    ("refresh_locations", False),
)
TRANSFORM_STEPS = tuple(name for name, _ in TRANSFORMS)


def _kind_steps(kind: str) -> tuple[Step, ...]:
    """Load one kind's staged rows while its new files are parsed (``fail_after`` gets
    "bulk_load" each time a part file is handed to the load), then record the new files."""
    table = KIND_TABLE[kind]
    return (
        Step(f"load_{table}", "load", (f"stage_{kind}",), kind=kind, table=table),
        Step(f"record_new_{kind}_files", "insert", (f"new_{kind}",), kind=kind,
             table="run_files", columns=RUN_FILES),
    )  # fmt: skip


@dataclass(frozen=True)
class RunPlan:
    before: tuple[Step, ...]  # outside any transaction
    transaction: tuple[Step, ...]  # the run's one transaction
    failure: tuple[Step, ...]  # after a rollback: the failed run's record, in its own
    # transaction (its wait for etl_runs still bounded by lock_wait: it never hangs)
    after_failure: tuple[Step, ...]  # then, outside any transaction


RUN_PLAN = RunPlan(
    before=(
        Step("create_tables", "tables"),
        Step("land_raw_files", "land", checkpoint="land"),
        Step("lock_wait"),
    ),
    transaction=(
        Step("lock_run", "lock"),
        Step("lock_wait_end"),
        Step("next_run_id", "query"),
        Step("clear_warehouse", when=("full_refresh",)),
        Step("read_ledger", "query"),
        Step("create_run_files", when=("reads_files",)),
        Step("create_affected", when=("reads_files",)),
        Step("parse_known_files", "parse", ("reads_files",)),
        Step("record_changed_files", "insert", ("known_changed",), table="run_files",
             columns=RUN_FILES),
        Step("snapshot_affected_events", when=("known_changed",)),
        Step("snapshot_affected_songs", when=("known_changed",)),
        Step("delete_staged_rows", when=("known_changed",)),
        Step("count_other_staged_events", "query", ("reads_files",)),
        Step("count_user_events", "query", ("reads_files",)),
        *_kind_steps("songs"),
        *_kind_steps("events"),
        Step("record_moved_files", "insert", ("moves",), table="run_files", columns=RUN_FILES),
        Step("end_parsing", "end_parse", ("reads_files",), checkpoint="parse"),
        Step("load_etl_rejects", "load", ("rejects",), table="etl_rejects", checkpoint="stage"),
        Step("analyze_staging", when=("loads",)),  # statistics before the snapshots join
        Step("snapshot_affected_songs", when=("loads",)),
        Step("snapshot_affected_events", when=("loads", "some_keys")),
        Step("affect_every_session", when=("loads", "some_keys", "model_unbuilt")),
        Step("create_file_versions", when=("version_updates",)),
        Step("record_file_versions", "insert", ("version_updates",), table="file_versions",
             columns=("url", "version")),
        Step("update_file_versions", when=("version_updates",)),
        Step("read_first_runs", "query", ("loads",)),
        Step("delete_ledger_rows", when=("loads",)),
        Step("record_files", "insert", ("loads",), table="etl_files", columns=LEDGER_COLUMNS,
             checkpoint="ledger"),
        *(
            Step(name, when=("loads", "some_keys") if partial else ("loads",), all_keys=True,
                 checkpoint=name)
            for name, partial in TRANSFORMS
        ),
        Step("drop_run_tables", when=("reads_files",)),
        Step("table_counts", "query"),
        Step("record_run", "insert", table="etl_runs", columns=RUN_COLUMNS),
    ),
    failure=(
        Step("record_failure", "insert", ("numbered",), table="etl_runs",
             columns=FAILURE_COLUMNS),
        Step("record_failed_rejects", "insert", ("numbered", "rejects"),
             table="etl_failed_rejects", columns=FAILED_REJECT_COLUMNS),
    ),
    after_failure=(Step("lock_wait_end"),),
)  # fmt: skip


def _named(backend: type[Backend], name: str, all_keys: bool = False) -> list[Sent]:
    return [
        Sent(backend.driver_sql(sql, has_parameters(sql)))
        for sql in backend.dialect_statements().get(name, all_keys)
    ]


def step_statements(backend: type[Backend], step: Step, all_keys: bool = False) -> list[Sent]:
    """What ``step`` sends on ``backend``; ``all_keys``: in a run affecting every key."""
    if step.does == "tables":
        creates = [Sent(s) for s in backend.dialect_statements().create_tables()]
        return [
            *_named(backend, "existing_tables"),
            *_named(backend, "etl_runs_columns"),
            *_writing(backend, creates, "tables_missing"),
            *_writing(backend, _named(backend, "add_etl_runs_unknown_fields"), "old_etl_runs"),
        ]
    if step.does == "land":
        return backend.landing_statements()
    if step.does == "load":
        return backend.load_statements(step.table)
    if step.does == "insert":
        sql = backend.insert_sql(step.table, step.columns)
        return [Sent(backend.driver_sql(sql, has_parameters(sql)))]
    if step.does == "end_parse":
        return backend.end_parse_statements()
    if step.does == "parse":
        return []
    return _named(backend, step.name, all_keys and step.all_keys)


def _writing(backend: type[Backend], sent: list[Sent], condition: str) -> list[Sent]:
    """Changes made outside the run's transaction (``Backend.writing``), under
    ``condition``."""
    if backend.capabilities.writes_in_transaction:
        sent = [Sent(backend.begin_sql), *sent, Sent(backend.commit_sql)]
    return [Sent(s.sql, (condition,)) for s in sent]


def _block(backend: type[Backend], steps: tuple[Step, ...]) -> list[tuple[Step, list[Sent]]]:
    return [(step, step_statements(backend, step)) for step in steps]


def _transaction_step(backend: type[Backend], sql: str) -> tuple[Step, list[Sent]]:
    return Step(sql.lower()), [Sent(sql)]


def walk(backend: type[Backend]) -> list[tuple[Step, list[Sent]]]:
    """Every step of a successful run, BEGIN and COMMIT included, with its statements."""
    plan = RUN_PLAN
    return [
        *_block(backend, plan.before),
        _transaction_step(backend, backend.begin_sql),
        *_block(backend, plan.transaction),
        _transaction_step(backend, backend.commit_sql),
    ]


def expected_statements(backend: type[Backend], facts: Mapping[str, int | bool]) -> list[str]:
    """The statements a successful run sends when ``facts`` hold (each condition true or
    false)."""
    all_keys = not facts.get("some_keys")
    sent: list[str] = []
    for step, statements in walk(backend):
        if not all(facts.get(c) for c in step.when):
            continue
        if step.all_keys:
            statements = step_statements(backend, step, all_keys)
        sent += [s.sql for s in statements if all(facts.get(c) for c in s.when)]
    return sent


def _heading(step: Step, conditions: tuple[str, ...]) -> str:
    if not conditions:
        return step.name
    return f"{step.name}, when " + "; and ".join(CONDITIONS[c] for c in conditions)


def terminated(sql: str) -> str:
    """``sql`` with its semicolon, on a line of its own after a trailing comment."""
    last = sql.rstrip().splitlines()[-1]
    return sql.rstrip() + ("\n;" if "--" in last else ";")


def dry_run(backend: type[Backend]) -> list[tuple[str, list[str]]]:
    """The run plan as ``sparkify sql`` prints it: (heading, statements) per step, a
    failed run's steps last. Lines marked ``-- affected keys only`` are shown; a run that
    affects every key leaves them out, with the steps whose condition is ``some_keys``."""
    plan = RUN_PLAN
    failed = [
        (Step("rollback, when the run fails"), [Sent("ROLLBACK")]),
        _transaction_step(backend, backend.begin_sql),
        *_block(backend, plan.failure),
        _transaction_step(backend, backend.commit_sql),
        *_block(backend, plan.after_failure),
    ]
    shown: list[tuple[str, list[str]]] = []
    for step, statements in [*walk(backend), *failed]:
        if not statements:
            shown.append((_heading(step, step.when) + " (no SQL)", []))
            continue
        groups: dict[tuple[str, ...], list[str]] = {}
        for sent in statements:
            groups.setdefault(sent.when, []).append(sent.sql)
        for when, sqls in groups.items():
            shown.append((_heading(step, step.when + when), sqls))
    return shown


def dry_run_text(backend: type[Backend]) -> str:
    """The dry run as one SQL script."""
    lines = []
    for heading, sqls in dry_run(backend):
        lines.append(f"-- {heading}")
        lines += [terminated(sql) + "\n" for sql in sqls]
    return "\n".join(lines)

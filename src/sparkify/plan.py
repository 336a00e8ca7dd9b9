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

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from sparkify.backends.base import Backend, Sent, has_parameters
from sparkify.staging import KIND_TABLE
from sparkify.tables import REBUILT

# What must hold for a step (or one of its statements) to run, as the dry run explains it.
CONDITIONS = {
    "tables_missing": "the warehouse lacks tables (a first run)",
    "old_etl_runs": "etl_runs lacks unknown_fields (a warehouse of an older version)",
    "old_design": "tables lack their declared physical design (made by an earlier version): "
    "PostgreSQL's zone-map indexes, Redshift's sort keys; once each",
    "uncounted_texts": "user_agents or locations lack events (a warehouse of an older "
    "version): added, in a transaction with its values counted once from all of user_events",
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
    "songs_affected": "song files are new, changed, moved or pruned (their songs may match "
    "plays of any time)",
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
    "load_detail": "the catalog has sys_load_detail",
    "no_load_detail": "the catalog lacks sys_load_detail",
    "whole_file": "Redshift read the raw file in one scan range (a file under 128 MB always)",
    "split_file": "Redshift read the raw file in several scan ranges (an uncompressed file of "
    "128 MB or more): its line numbers are lost, so sparkify parses it instead",
    "first_raw_files": "the first raw files of the run",
    "each_raw_file": "once per raw file",
    "copy_refused": "COPY loaded fewer rows than were staged (the run then fails)",
    "load_error_detail": "the catalog has sys_load_error_detail",
    "no_load_error_detail": "the catalog lacks sys_load_error_detail",
    "numbered": "the run failed after it got its run_id",
    "parallel_build": "the backend builds whole tables on several connections (PostgreSQL)",
    "dead_builds": "a run that died left its build schema behind",
    "rebuild": "a rebuild: a first load or --full-refresh on a backend that builds whole "
    "tables on several connections (the steps up to swap_tables run on build connection 1)",
    "in_place": "an incremental run, which changes the tables in place",
}

Does = Literal[
    "tables", "land", "run", "query", "lock", "parse", "end_parse", "load", "insert",
    "dead_builds", "build", "lanes", "swap",
]  # fmt: skip
# Placeholders for the names the dry run cannot know: the warehouse's schema and the build
# schema of a run that rebuilds (sparkify.rebuild).
SCHEMA, BUILD = "<schema>", "<build schema>"
MAIN = "main"  # the connection that holds the run's transaction


def build_connection(number: int) -> str:
    """The name of a rebuild's connection, 0 first, as the dry run shows it."""
    return f"build connection {number + 1}"


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
# The columns added since the tables were first declared: (table, column), the statement
# that adds it to an older warehouse, and the condition the dry run names for it.
ADDED_COLUMNS = (
    ("etl_runs", "unknown_fields", "add_etl_runs_unknown_fields", "old_etl_runs"),
    ("user_agents", "events", "add_user_agents_events", "uncounted_texts"),
    ("locations", "events", "add_locations_events", "uncounted_texts"),
)
FAILURE_COLUMNS = ("run_id", "started_at", "finished_at", "status", "message")
FAILED_REJECT_COLUMNS = ("run_id", "url", "line_no", "reason", "raw")
# The transforms, in order. Those only a run affecting some of the keys needs read the
# ranges of values (sessions, start times) that bound the other steps' reads of the history.
_SOME_KEYS = ("loads", "some_keys")
TRANSFORMS = (
    Step("affect_late_songs", when=(*_SOME_KEYS, "songs_affected"),
         checkpoint="affect_late_songs"),
    Step("rank_files", when=("loads",), checkpoint="rank_files"),
    Step("analyze_run_tables", when=("loads",), checkpoint="analyze_run_tables"),
    Step("affected_bounds", "query", _SOME_KEYS),
    Step("snapshot_play_times", when=_SOME_KEYS),  # the times the affected plays had
    Step("upsert_songplays", when=("loads",), all_keys=True, checkpoint="upsert_songplays"),
    Step("analyze_songplays", when=("loads",), all_keys=True, checkpoint="analyze_songplays"),
    Step("snapshot_play_times", when=_SOME_KEYS),  # and have
    Step("time_bounds", "query", _SOME_KEYS),
    *(
        Step(name, when=("loads",), all_keys=True, checkpoint=name)
        for name in ("collect_user_changes", "upsert_users", "upsert_user_levels",
                     "upsert_songs", "upsert_artists", "refresh_time", "upsert_user_events",
                     "analyze_user_events", "upsert_sessions", "upsert_subscription_changes",
                     "upsert_song_feedback", "refresh_user_agents", "refresh_locations")
    ),
)  # fmt: skip
TRANSFORM_STEPS = tuple(step.checkpoint for step in TRANSFORMS if step.checkpoint)
TRANSFORM_PLAN = tuple(
    Step(s.name, s.does, (*s.when, "in_place"), all_keys=s.all_keys, checkpoint=s.checkpoint)
    for s in TRANSFORMS
)
# What a rebuild's other connections do before their transforms: their own working tables
# (temporary tables are a connection's own) with every file of the run and every song.
BUILD_SETUP = (
    Step("create_run_files"),
    Step("record_build_files", "insert", table="run_files", columns=RUN_FILES),
    Step("create_affected"),
    Step("snapshot_affected_songs"),
)


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
        Step("drop_dead_builds", "dead_builds", ("parallel_build",)),
        Step("can_build", "query", ("parallel_build",)),
        Step("clear_warehouse", when=("full_refresh", "in_place")),
        Step("read_ledger", "query"),
        # From here to swap_tables, a rebuild's statements go to its first build connection.
        Step("start_build", "build", ("rebuild",)),
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
        Step("build_star_tables", "lanes", ("loads", "rebuild")),
        *TRANSFORM_PLAN,
        Step("drop_run_tables", when=("reads_files",)),
        Step("check_keys", when=("loads",)),
        Step("table_counts", "query"),
        Step("swap_tables", "swap", ("rebuild",), checkpoint="swap"),
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


_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE|ANALYZE|CREATE\s+TEMPORARY\s+TABLE)\s+(\w+)",
    re.IGNORECASE,
)
_TEMPORARY = re.compile(r"\bCREATE\s+TEMPORARY\s+TABLE\s+(\w+)", re.IGNORECASE)
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)", re.IGNORECASE)
# What each transform of a rebuild costs, relative to the others: seconds at 1M events
# (docs/performance.md), used only to share the transforms out over the build connections.
# A transform not listed costs DEFAULT_COST; a connection other than the first starts
# with its working tables (BUILD_SETUP), SETUP_COST.
BUILD_COSTS = {
    "upsert_songplays": 15.0,
    "refresh_time": 8.5,
    "collect_user_changes": 7.5,
    "upsert_user_events": 15.0,
    "upsert_sessions": 6.3,
    "upsert_song_feedback": 4.4,
    "analyze_user_events": 1.0,
    "refresh_user_agents": 1.1,
}
DEFAULT_COST, SETUP_COST = 0.5, 0.5


@dataclass(frozen=True)
class Lanes:
    """A rebuild's transforms: ``steps[n]`` run in order on build connection ``n``, and a
    step named in ``after`` first waits for the steps it names, which run on other
    connections (each step's name is unique among them)."""

    steps: list[tuple[Step, ...]]
    after: dict[str, tuple[str, ...]]

    def connection_of(self, name: str) -> int:
        return next(n for n, steps in enumerate(self.steps) if any(s.name == name for s in steps))


def build_lanes(backend: type[Backend]) -> Lanes:
    """The transforms of a rebuild, per build connection (``Backend.build_connections``).

    A transform depends on an earlier one that writes a table it touches, or that touches
    a table it writes (songplays, then the time of its plays; user_events, then the
    sessions; both, then song_feedback). The transforms are shared out in plan order, each
    to the connection where it would end first (``BUILD_COSTS``), once what it depends on
    is done: on another connection, it waits for it (``Lanes.after``); a transform that
    reads a temporary table an earlier one made runs on that one's connection. The leading
    transforms that fill no warehouse table (the file ranks, statistics) run on every
    connection, each for its own temporary tables; a connection other than the first (the
    one that staged the rows) first makes its own working tables (``BUILD_SETUP``).
    """
    statements = backend.dialect_statements()
    steps = [s for s in TRANSFORM_PLAN if "some_keys" not in s.when]  # every key affected
    sqls = {s.name: "\n".join(statements.get(s.name, all_keys=True)) for s in steps}
    written = {name: set(_WRITES.findall(sql)) for name, sql in sqls.items()}
    touched = {name: written[name] | set(_READS.findall(sql)) for name, sql in sqls.items()}
    first = next(n for n, s in enumerate(steps) if written[s.name] & set(REBUILT))
    prelude, rest = tuple(steps[:first]), steps[first:]
    count = max(backend.build_connections, 1)
    free = [0.0] + [SETUP_COST] * (count - 1)  # when each connection is free, in cost units
    lane: dict[str, int] = {}
    ends: dict[str, float] = {}
    needs: dict[str, list[str]] = {}
    made: dict[str, str] = {}  # a temporary table: the transform that makes it
    for step in rest:
        name = step.name
        needs[name] = [
            done for done in lane if written[done] & touched[name] or touched[done] & written[name]
        ]
        ready = max((ends[done] for done in needs[name]), default=0.0)
        cost = BUILD_COSTS.get(name, DEFAULT_COST)
        pinned = {lane[made[t]] for t in touched[name] if t in made}
        choices = sorted(pinned) or range(count)
        # The earliest end; on a tie, the connection of the last of what it depends on.
        last = max(needs[name], key=ends.__getitem__, default=None)
        lane[name] = min(
            choices,
            key=lambda n: (max(free[n], ready) + cost, n != (lane[last] if last else 0), n),
        )
        ends[name] = free[lane[name]] = max(free[lane[name]], ready) + cost
        made.update({t: name for t in _TEMPORARY.findall(sqls[name])})
    used = sorted(set(lane.values()))
    number = {old: new for new, old in enumerate(used)}  # no connection without a transform
    connections: list[tuple[Step, ...]] = [
        (*(BUILD_SETUP if n else ()), *prelude, *(s for s in rest if lane[s.name] == old))
        for n, old in enumerate(used)
    ]
    after = {
        name: waits
        for name, deps in needs.items()
        if (waits := tuple(d for d in deps if number[lane[d]] != number[lane[name]]))
    }
    return Lanes(connections, after)


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
            *_named(backend, "added_columns"),
            *_writing(backend, creates, "tables_missing"),
            *(
                sent
                for _, _, name, condition in ADDED_COLUMNS
                for sent in _in_transaction(backend, _named(backend, name), condition)
            ),
            *_design(backend),
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
    if step.does == "dead_builds":
        drop = backend.drop_build_sql(BUILD)
        return [*_named_sql(backend, backend.dead_builds_sql()), Sent(drop, ("dead_builds",))]
    if step.does == "build":
        on = build_connection(0)
        created = [Sent(sql, on=on) for sql in backend.build_tables_sql()]
        opened = backend.opening_statements(BUILD, create=True)
        return [replace(sent, on=on) for sent in opened] + created
    if step.does == "swap":
        return [Sent(sql) for sql in backend.swap_sql(SCHEMA, BUILD, REBUILT)]
    return _named(backend, step.name, all_keys and step.all_keys)


def _named_sql(backend: type[Backend], sql: str) -> list[Sent]:
    return [Sent(backend.driver_sql(sql, has_parameters(sql)))]


def steps_of(backend: type[Backend], steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps of a run on ``backend``: on one that builds nothing on other connections,
    those steps go, and every run changes the tables in place."""
    if backend.capabilities.parallel_build:
        return steps
    builds = {"parallel_build", "rebuild"}
    return tuple(
        replace(step, when=tuple(c for c in step.when if c != "in_place"))
        for step in steps
        if not builds & set(step.when)
    )


def _writing(backend: type[Backend], sent: list[Sent], condition: str) -> list[Sent]:
    """Changes made outside the run's transaction (``Backend.writing``), under
    ``condition``."""
    if backend.capabilities.writes_in_transaction:
        sent = [Sent(backend.begin_sql), *sent, Sent(backend.commit_sql)]
    return [Sent(s.sql, (condition,)) for s in sent]


def _design(backend: type[Backend]) -> list[Sent]:
    """The catalog query and the statements of ``pipeline.upgrade_design``."""
    design = backend.dialect_statements().design()
    if not design:
        return []
    upgrades = [Sent(sql) for sql in design.values()]
    return [*_named(backend, "physical_design"), *_writing(backend, upgrades, "old_design")]


def _in_transaction(backend: type[Backend], sent: list[Sent], condition: str) -> list[Sent]:
    """Changes made outside the run's transaction in one of their own, under ``condition``."""
    sent = [Sent(backend.begin_sql), *sent, Sent(backend.commit_sql)]
    return [Sent(s.sql, (condition,)) for s in sent]


def _lanes(backend: type[Backend], lanes: Step) -> list[tuple[Step, list[Sent]]]:
    """A rebuild's transforms (``build_lanes``) as steps of their own, each sent on its
    build connection, under the conditions of ``lanes``."""
    shown = []
    built = build_lanes(backend)
    for n, steps in enumerate(built.steps):
        on = build_connection(n)
        parts = [("connect", backend.opening_statements(BUILD, create=False))] if n else []
        parts += [(_waiting(built, step.name), step_statements(backend, step, all_keys=True))
                  for step in steps]  # fmt: skip
        shown += [
            (Step(f"{lanes.name}: {name}", when=lanes.when), [replace(s, on=on) for s in sents])
            for name, sents in parts
        ]
    return shown


def _waiting(lanes: Lanes, name: str) -> str:
    """A step's name, with what it waits for on other connections."""
    on = [f"{w} on {build_connection(lanes.connection_of(w))}" for w in lanes.after.get(name, ())]
    return f"{name} (after {', '.join(on)})" if on else name


def _block(backend: type[Backend], steps: tuple[Step, ...]) -> list[tuple[Step, list[Sent]]]:
    shown = []
    for step in steps_of(backend, steps):
        if step.does == "lanes":
            shown += _lanes(backend, step)
        else:
            shown.append((step, step_statements(backend, step)))
    return shown


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


def expected_by_connection(
    backend: type[Backend], facts: Mapping[str, int | bool]
) -> dict[str, list[str]]:
    """The statements a successful run sends when ``facts`` hold (each condition true or
    false), per connection: ``MAIN`` first, then a rebuild's build connections. Whether
    the backend builds on several connections, and so whether the run is in place, follow
    from the backend and ``rebuild``."""
    parallel = backend.capabilities.parallel_build
    facts = {**facts, "parallel_build": parallel, "in_place": not facts.get("rebuild")}
    all_keys = not facts.get("some_keys")
    sent: dict[str, list[str]] = {MAIN: []}
    current = MAIN
    for step, statements in walk(backend):
        if not all(facts.get(c) for c in step.when):
            continue
        if step.does == "swap":
            current = MAIN
        if step.all_keys:
            statements = step_statements(backend, step, all_keys)
        for s in statements:
            if all(facts.get(c) for c in s.when):
                sent.setdefault(s.on or current, []).append(s.sql)
        if step.does == "build":
            current = build_connection(0)
    return sent


def expected_statements(backend: type[Backend], facts: Mapping[str, int | bool]) -> list[str]:
    """The statements of ``expected_by_connection``, one connection after the other."""
    return [sql for sqls in expected_by_connection(backend, facts).values() for sql in sqls]


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
        groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
        for sent in statements:
            groups.setdefault((sent.when, sent.on), []).append(sent.sql)
        for (when, on), sqls in groups.items():
            shown.append((_heading(step, step.when + when) + (f" (on {on})" if on else ""), sqls))
    return shown


def dry_run_text(backend: type[Backend]) -> str:
    """The dry run as one SQL script."""
    lines = []
    for heading, sqls in dry_run(backend):
        lines.append(f"-- {heading}")
        lines += [terminated(sql) + "\n" for sql in sqls]
    return "\n".join(lines)

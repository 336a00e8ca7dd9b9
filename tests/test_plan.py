"""One run plan: what a run sends is what ``sparkify sql`` prints.

The statements a real run sends are recorded where they reach the driver (psycopg's
cursor, DuckDB's connection) and held to the plan's list for the same conditions; the dry
run is one SQL script that sqlglot parses as a whole in each backend's dialect.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlglot
from conftest import Warehouse, run_cli
from datasets import DAY_MS, NOV_1, play, song, write_day, write_song
from recording import Recorder, facts, recorded_run

from sparkify.backends import backend_class
from sparkify.plan import (
    BUILD,
    BUILD_COSTS,
    BUILD_SETUP,
    CONDITIONS,
    DEFAULT_COST,
    RUN_PLAN,
    SCHEMA,
    TRANSFORM_PLAN,
    build_lanes,
    dry_run_text,
    expected_by_connection,
    expected_statements,
    walk,
)

DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "redshift": "redshift"}


# -- the dry run ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", sorted(DIALECTS))
def test_the_dry_run_is_one_script_sqlglot_parses(backend: str) -> None:
    text = run_cli("sql", "--backend", backend).stdout
    assert text == dry_run_text(backend_class(backend))
    parsed = [tree for tree in sqlglot.parse(text, read=DIALECTS[backend]) if tree]
    planned = [sent for _, statements in walk(backend_class(backend)) for sent in statements]
    assert len(parsed) >= len(planned)  # the failed run's statements follow
    assert "..." not in re.sub(r"'[^']*'", "''", text)  # no elided statement (literals aside)
    for word in ("BEGIN;", "COMMIT;", "ROLLBACK;", "SELECT COALESCE(MAX(run_id), 0) + 1"):
        assert word in text


def test_the_lock_is_the_first_statement_of_the_transaction() -> None:
    for backend in ("postgres", "redshift"):
        steps = walk(backend_class(backend))
        begin = next(n for n, (step, _) in enumerate(steps) if step.name == "begin")
        lock_step, lock = steps[begin + 1]
        assert lock_step.name == "lock_run" and lock[0].sql.startswith("LOCK ")
    before = [step.name for step in RUN_PLAN.before]
    assert before == ["create_tables", "land_raw_files", "lock_wait"]


def test_every_condition_is_explained() -> None:
    used = {
        c
        for backend in DIALECTS
        for _, sents in walk(backend_class(backend))
        for s in sents
        for c in s.when
    }
    steps = (*RUN_PLAN.before, *RUN_PLAN.transaction, *RUN_PLAN.failure)
    used |= {c for step in steps for c in step.when}
    assert used == set(CONDITIONS)


def test_touched_files_update_the_ledger_in_one_statement(
    warehouse: Warehouse, tmp_path: Path, recorder: Recorder
) -> None:
    """Files whose change token moved but whose content did not (a touched folder, a re-upload)
    cost one UPDATE however many there are, not one per file (on Redshift each would be
    written on every node of the DISTSTYLE ALL ledger)."""
    for n in range(40):
        write_song(tmp_path, song(f"SO{n}", f"Song {n}", "The Band", 100.0 + n))
    (tmp_path / "log_data").mkdir()
    recorded_run(warehouse, tmp_path, recorder)
    for path in (tmp_path / "song_data").rglob("*.json"):
        os.utime(path, (1, 1))
    summary, sent = recorded_run(warehouse, tmp_path, recorder)
    assert (summary.files_new, summary.files_changed, summary.files_skipped) == (0, 0, 40)
    assert [sql for sql in sent if sql.lstrip().upper().startswith("UPDATE")] == [
        sql for sql in sent if "UPDATE etl_files" in sql
    ]
    assert sum("UPDATE etl_files" in sql for sql in sent) == 1
    # The new tokens are in the ledger: the next run reads no file.
    summary, sent = recorded_run(warehouse, tmp_path, recorder)
    assert summary.files_skipped == 40
    assert sent == expected_statements(backend_class(warehouse.name), facts())


# -- a rebuild's transforms on several connections -------------------------------------------
# What each transform reads that another one builds (docs/model.md): it runs after it, on
# the same connection or waiting for it. user_changes is a temporary table: its readers run
# on the connection that made it.
READS_BUILT = {
    "refresh_time": ("upsert_songplays", "analyze_songplays"),
    "upsert_users": ("collect_user_changes",),
    "upsert_user_levels": ("collect_user_changes",),
    "upsert_sessions": ("upsert_user_events",),
    "upsert_subscription_changes": ("upsert_user_events",),
    "upsert_song_feedback": ("upsert_songplays", "upsert_user_events"),
    "refresh_user_agents": ("upsert_user_events",),
    "refresh_locations": ("upsert_user_events",),
}


def test_a_rebuild_shares_the_transforms_out_evenly_each_after_what_it_reads() -> None:
    backend = backend_class("postgres")
    lanes = build_lanes(backend)
    assert len(lanes.steps) == backend.build_connections == 2
    setup = {step.name for step in BUILD_SETUP}
    builds = [[s.name for s in steps if s.checkpoint] for steps in lanes.steps]
    transforms = [s.name for s in TRANSFORM_PLAN if "some_keys" not in s.when and s.checkpoint]
    leading = ["rank_files", "analyze_run_tables"]  # every connection's own
    assert all(names[:2] == leading for names in builds)
    assert sorted(n for names in builds for n in names[2:]) == sorted(transforms[2:])
    assert [s.name for s in lanes.steps[1][: len(BUILD_SETUP)]] == [s.name for s in BUILD_SETUP]
    assert not setup & {s.name for s in lanes.steps[0]}

    def place(name: str) -> tuple[int, int]:
        return next((n, names.index(name)) for n, names in enumerate(builds) if name in names)

    for name, reads in READS_BUILT.items():
        for built in reads:
            (lane, at), (built_lane, built_at) = place(name), place(built)
            if lane == built_lane:
                assert built_at < at, (name, built)
            else:
                assert built in lanes.after[name] and built != "collect_user_changes", name
    # No connection carries much more than half of the work (the critical path, songplays
    # and the time of its plays, is less than half of it).
    cost = [sum(BUILD_COSTS.get(n, DEFAULT_COST) for n in names[2:]) for names in builds]
    assert max(cost) < 0.6 * sum(cost), builds


# -- a real run against the plan ----------------------------------------------------------------
def test_a_run_sends_exactly_the_planned_statements(
    warehouse: Warehouse, two_days: Path, recorder: Recorder
) -> None:
    backend = backend_class(warehouse.name)
    # 1. A first load: every play and user is affected, so the partial-run steps go; on
    # PostgreSQL the tables are rebuilt on two more connections and swapped in.
    summary, sent = recorded_run(warehouse, two_days, recorder)
    assert summary.files_new == 3
    rebuild = backend.capabilities.parallel_build
    first = facts(tables_missing=True, reads_files=True, stage_songs=True, new_songs=True,
                  stage_events=True, new_events=True, loads=True, rebuild=rebuild)  # fmt: skip
    expected = expected_by_connection(backend, first)
    assert len(expected) == (3 if rebuild else 1)
    schema = warehouse.overrides.get(("WAREHOUSE", "SCHEMA"), "")
    builds = {b for sql in sent for b in re.findall(r"sparkify_build_[0-9a-f]+_[0-9a-f]+", sql)}
    names = {
        **{build: BUILD for build in builds},
        **({f'"{schema}"': f'"{SCHEMA}"'} if schema else {}),
    }
    assert recorder.by_connection(names) == list(expected.values())

    # 2. One day file changed (a bad line added), a song file added: some keys affected.
    day = next((two_days / "log_data").rglob("2018-11-02-*.json"))
    day.write_bytes(day.read_bytes() + b"\n{not json")
    write_song(two_days, song("SO2", "Song Two", "The Band", 100.0))
    summary, sent = recorded_run(warehouse, two_days, recorder)
    assert (summary.files_new, summary.files_changed, summary.rows_rejected) == (1, 1, 1)
    second = facts(reads_files=True, known_changed=True, stage_songs=True, new_songs=True,
                   stage_events=True, rejects=True, loads=True, some_keys=True,
                   songs_affected=True)  # fmt: skip
    assert sent == expected_statements(backend, second)

    # 3. A file touched but not changed: its ledger version is updated, nothing loaded.
    os.utime(day, (1, 1))
    summary, sent = recorded_run(warehouse, two_days, recorder)
    assert summary.files_skipped == 4
    assert sent == expected_statements(backend, facts(reads_files=True, version_updates=True))

    # 4. Nothing new: the run reads the ledger and records itself.
    summary, sent = recorded_run(warehouse, two_days, recorder)
    assert sent == expected_statements(backend, facts())

    # 5. A new day and no song file: plays are matched to songs only in their own rows.
    write_day(two_days, [play(NOV_1 + 2 * DAY_MS, 3, 12, 0)])
    summary, sent = recorded_run(warehouse, two_days, recorder)
    new_day = facts(reads_files=True, stage_events=True, new_events=True, loads=True,
                    some_keys=True)  # fmt: skip
    assert sent == expected_statements(backend, new_day)
    assert not any("affected_titles t" in sql for sql in sent)
    assert sent[sent.index(backend.begin_sql) + 1].startswith(("LOCK", "SELECT COALESCE"))

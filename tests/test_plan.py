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
    CONDITIONS,
    RUN_PLAN,
    SCHEMA,
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

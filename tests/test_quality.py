"""The quality checks: checks that share one query still fail one by one, and a key the
warehouse enforces is not scanned for, while one it does not enforce is."""

from __future__ import annotations

from pathlib import Path

from conftest import Warehouse, etl
from recording import Recorder
from test_model import change

from sparkify.backends.redshift import RedshiftBackend
from sparkify.quality import CHECKS, run_checks


def outcomes(warehouse: Warehouse) -> dict[str, int]:
    backend = warehouse.backend()
    backend.connect()
    try:
        return {o.name: o.failing_rows for o in run_checks(backend)}
    finally:
        backend.close()


def test_the_checks_that_share_a_pass_over_the_staged_events_fail_apart(
    warehouse: Warehouse, model_data: Path
) -> None:
    shared = [c.name for c in CHECKS if "FROM staging_events GROUP BY" in c.sql]
    assert shared == ["nextsong_events_are_songplays", "staged_events_are_user_events"]
    etl(warehouse, model_data)
    assert not any(outcomes(warehouse).values())

    change(warehouse, "DELETE FROM user_events WHERE event_id = "
           "(SELECT MAX(event_id) FROM user_events WHERE page <> 'NextSong')")  # fmt: skip
    found = outcomes(warehouse)
    assert (found["staged_events_are_user_events"], found["nextsong_events_are_songplays"]) == (
        1,
        0,
    )

    change(warehouse, "DELETE FROM songplays WHERE songplay_id = "
           "(SELECT MAX(songplay_id) FROM songplays)")  # fmt: skip
    found = outcomes(warehouse)
    assert (found["staged_events_are_user_events"], found["nextsong_events_are_songplays"]) == (
        1,
        1,
    )


def test_a_key_the_warehouse_enforces_is_not_scanned_and_one_it_does_not_is(
    warehouse: Warehouse, model_data: Path, recorder: Recorder
) -> None:
    etl(warehouse, model_data)
    keys = [c for c in CHECKS if c.key]
    recorder.on = True
    assert not any(outcomes(warehouse).values())
    recorder.on = False
    scanned = {c.name for c in keys if c.sql in recorder.sent}
    enforced = warehouse.name == "postgres"  # DuckDB declares no key indexes
    assert scanned == (set() if enforced else {c.name for c in keys})

    # A primary key dropped (by hand, say): its check reads the table, and finds duplicates.
    drop = "ALTER TABLE songplays DROP CONSTRAINT songplays_pkey" if enforced else "SELECT 1"
    change(warehouse, drop, "INSERT INTO songplays SELECT * FROM songplays "
           "WHERE songplay_id = (SELECT MIN(songplay_id) FROM songplays)")  # fmt: skip
    recorder.sent.clear()
    recorder.on = True
    found = outcomes(warehouse)
    assert found["songplays_key"] == 1
    assert {c.name for c in keys if c.sql in recorder.sent} == (
        {"songplays_key"} if enforced else {c.name for c in keys}
    )


def test_redshift_enforces_no_key_so_every_key_is_scanned() -> None:
    """Redshift declares primary keys but does not enforce them: asking its catalog (as
    the PostgreSQL backend it extends does) would skip checks that can fail there."""
    assert RedshiftBackend.__new__(RedshiftBackend).enforced_keys() == frozenset()

"""The event model (docs/model.md): user_events, sessions, subscription_changes,
song_feedback, user_agents and locations, exactly, on every backend. Reruns, split loads,
changed files and backfills are held to one load by the equivalence tests of
test_pipeline.py and test_source_changes.py (``conftest.dump`` covers these tables), and
the backends to each other by test_postgres.py and test_redshift.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Warehouse, dump, etl
from datasets import (
    LOCATIONS,
    NOV_1,
    USER_AGENTS,
    copy_days,
    event_days,
    play,
    song,
    write_day,
    write_song,
)

MODEL = ("user_events", "sessions", "subscription_changes", "song_feedback", "user_agents",
         "locations")  # fmt: skip
T = dt.datetime(2018, 11, 1, 10)


def at(seconds: int) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def test_generated_events_fill_every_table_of_the_model(
    warehouse: Warehouse, faulty_generated: Path
) -> None:
    summary = etl(warehouse, faulty_generated)
    assert summary["rows_rejected"] > 0
    assert all(check["passed"] for check in summary["checks"])
    assert all(summary["tables"][table] > 0 for table in MODEL)
    kinds = warehouse.query("SELECT DISTINCT kind FROM subscription_changes ORDER BY kind")
    assert kinds == [("cancellation",), ("downgrade",), ("upgrade",)]
    ratings = warehouse.query(
        "SELECT rating, COUNT(song_id) FROM song_feedback GROUP BY rating ORDER BY rating"
    )
    assert [r for r, _ in ratings] == [-1, 1] and all(known > 0 for _, known in ratings)
    devices = warehouse.query("SELECT DISTINCT device FROM user_agents ORDER BY device")
    assert devices == [("desktop",), ("mobile",)]


def test_the_event_model_semantics(warehouse: Warehouse, model_data: Path) -> None:
    etl(warehouse, model_data)
    assert warehouse.query(
        "SELECT event_id, start_time, user_id, page, level, auth FROM user_events "
        "WHERE session_id IN (11, 12) ORDER BY event_id"
    ) == [
        (11_000_000, at(6), None, "Home", "free", "Logged Out"),
        (12_000_000, at(7), 2, "Thumbs Down", "paid", "Logged In"),
        (12_000_001, at(8), 2, "Submit Downgrade", "paid", "Logged In"),
        (12_000_002, at(9), 2, "Cancellation Confirmation", "paid", "Cancelled"),
    ]
    iphone, new_york = USER_AGENTS[6][0], LOCATIONS[0][0]
    assert warehouse.query("SELECT * FROM sessions WHERE session_id < 20 ORDER BY session_id") == [
        # the level, location and agent of the last event that has one
        (10, 1, at(0), at(5), 6, 2, "paid", new_york, iphone),
        (11, None, at(6), at(6), 1, 0, "free", None, None),  # never logged in
        (12, 2, at(7), at(9), 3, 0, "paid", "Somewhere, ST", "Agent"),
    ]
    assert warehouse.query("SELECT * FROM subscription_changes ORDER BY event_id") == [
        (10_000_002, at(2), 1, 10, "upgrade", "free", "paid"),
        (12_000_001, at(8), 2, 12, "downgrade", "paid", "free"),
        (12_000_002, at(9), 2, 12, "cancellation", "paid", None),
    ]
    assert warehouse.query("SELECT * FROM song_feedback ORDER BY event_id") == [
        (10_000_001, at(1), 1, 10, 1, 10_000_000, "SO1", "AR1"),  # rates the play before it
        (10_000_004, at(4), 1, 10, -1, 10_000_003, None, None),  # a song not in the catalogue
        (12_000_000, at(7), 2, 12, -1, None, None, None),  # no play before it
    ]


def test_user_agents_and_locations_are_parsed_by_the_documented_rules(
    warehouse: Warehouse, model_data: Path
) -> None:
    etl(warehouse, model_data)
    agents = dict(
        (text, rest)
        for text, *rest in warehouse.query(
            "SELECT user_agent, browser, os, device FROM user_agents"
        )
    )
    expected = {text: list(rest) for text, *rest in USER_AGENTS}
    assert agents == expected | {"Agent": ["Other", "Other", "other"]}
    places = dict(
        (text, rest)
        for text, *rest in warehouse.query(
            "SELECT location, metro_area, city, state, states FROM locations"
        )
    )
    expected = {text: list(rest) for text, *rest in LOCATIONS}
    assert places == expected | {"Somewhere, ST": ["Somewhere", "Somewhere", "ST", "ST"]}


def test_feedback_on_a_song_that_arrives_later_names_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    write_song(tmp_path, song("SO1", "Early", "Band", 100.0))
    write_day(
        tmp_path,
        [
            play(NOV_1, 1, 1, 0, song="Late Song", artist="Band", length=90.0),
            play(NOV_1 + 1000, 1, 1, 1, page="Thumbs Up"),
        ],
    )
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT songplay_id, song_id FROM song_feedback") == [(1_000_000, None)]
    write_song(tmp_path, song("SO2", "Late Song", "Band", 90.0))
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT songplay_id, song_id FROM song_feedback") == [(1_000_000, "SO2")]


def change(warehouse: Warehouse, *statements: str) -> None:
    backend = warehouse.backend()
    backend.connect()
    try:
        with backend.transaction():  # DuckDB writes only inside one (a copy, swapped in)
            for sql in statements:
                backend.execute(sql)
    finally:
        backend.close()


# How older versions left a warehouse: without the event model's tables, or with
# user_agents and locations that did not count their events (the runs then read all of
# user_events to tell which texts were gone).
OLDER_VERSIONS = {
    "before_the_event_model": tuple(f"DROP TABLE {table}" for table in MODEL),
    "texts_not_counted": tuple(f"ALTER TABLE {t} DROP COLUMN events" for t in MODEL[-2:]),
}


@pytest.mark.parametrize("older_version", OLDER_VERSIONS)
def test_a_warehouse_of_an_older_version_gets_all_of_the_model_with_the_next_load(
    older_version: str, new_warehouse: Callable[[], Warehouse], generated: Path, tmp_path: Path
) -> None:
    days = event_days(generated)
    data = copy_days(generated, tmp_path / "data", days[:3])
    older = new_warehouse()
    etl(older, data)
    change(older, *OLDER_VERSIONS[older_version])
    copy_days(generated, data, days[3:4])
    summary = etl(older, data)
    assert summary["files"]["new"] == 1
    assert all(check["passed"] for check in summary["checks"])
    at_once = new_warehouse()
    etl(at_once, data)
    assert dump(older) == dump(at_once)


def test_checks_fail_when_the_texts_counts_disagree_with_the_events(
    warehouse: Warehouse, model_data: Path
) -> None:
    etl(warehouse, model_data)
    change(warehouse, "UPDATE locations SET events = events + 1 WHERE location LIKE 'New York%'")
    result = warehouse.cli("check", "--json")
    assert result.exit_code == 4
    failing = {c["name"] for c in json.loads(result.stdout) if not c["passed"]}
    assert failing == {"user_events_are_described"}


def test_checks_fail_when_the_model_disagrees_with_the_events(
    warehouse: Warehouse, model_data: Path
) -> None:
    etl(warehouse, model_data)
    change(
        warehouse,
        "UPDATE sessions SET plays = plays + 1 WHERE session_id = 10",
        "DELETE FROM user_agents WHERE device = 'tablet'",
    )
    result = warehouse.cli("check", "--json")
    assert result.exit_code == 4
    failing = {c["name"] for c in json.loads(result.stdout) if not c["passed"]}
    assert failing == {"sessions_match_user_events", "user_events_are_described"}

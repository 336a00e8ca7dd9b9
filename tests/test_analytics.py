"""Every named query in ``analytics.QUERIES``, answered exactly on a small known dataset.

The dataset is written in the public song_data/log_data format and loaded by the real
pipeline; the answers come from ``sparkify query NAME --json`` on every backend.

Two days, three listeners, four catalogue songs:

- 2018-11-05 (Monday): Ada (user 10, free) plays Alpha, Beta and an unknown song at 09:00;
  Grace (user 20, paid) plays Alpha and Gamma at 21:00.
- 2018-11-06 (Tuesday): Ada visits Home, now paid, then plays Alpha at 09:30 (an upgrade);
  Grace, now free, plays the unknown song at 22:00 (a downgrade); Alan (user 30, free) plays
  Gamma and " alpha "/"ANN" (matched: case and spaces are ignored) at 09:15.
- Rejected: two event lines (no ts; sessionId "abc") and one song file (no song_id).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Warehouse
from datasets import play, song, write_day, write_song
from test_questions import QUESTIONS

from sparkify import analytics

EVENTS_DAY_2 = "log_data/2018/11/2018-11-06-events.json"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "queries.md"
USERS = {10: ("Ada", "Lovelace"), 20: ("Grace", "Hopper"), 30: ("Alan", "Turing")}


def _at(when: str, user: int, level: str, session: int, item: int, **extra: Any) -> dict:
    """One event of ``user`` at ``when`` (UTC); a play when ``song`` is given, else Home."""
    ts = int(dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp() * 1000)
    first, last = USERS[user]
    if "song" in extra:
        extra.setdefault("length", 200.0)
    else:
        extra.setdefault("page", "Home")
    return play(ts, user, session, item, level=level, firstName=first, lastName=last, **extra)


def write_dataset(root: Path) -> tuple[Path, Path]:
    """The dataset described above, as song_data/ and log_data/ under ``root``."""
    write_song(root, song("SOALPHA", "Alpha", "Ann", 200.0, artist_id="ARANN"))
    write_song(root, song("SOBETA", "Beta", "Ann", 180.0, artist_id="ARANN"))
    write_song(root, song("SOGAMMA", "Gamma", "Bob", 150.0, artist_id="ARBOB"))
    write_song(root, song("SODELTA", "Delta", "Bob", 240.0, artist_id="ARBOB"))
    no_id = song("SOBROKEN", "No Id", "Nobody", 1.0)
    del no_id["song_id"]
    write_song(root, no_id, name="BROKEN")
    write_day(
        root,
        [
            _at("2018-11-05 09:00", 10, "free", 100, 0, song="Alpha", artist="Ann"),
            _at("2018-11-05 09:05", 10, "free", 100, 1, song="Beta", artist="Ann"),
            _at("2018-11-05 09:10", 10, "free", 100, 2, song="Unknown Song", artist="Nobody"),
            _at("2018-11-05 21:00", 20, "paid", 200, 0, song="Alpha", artist="Ann"),
            _at("2018-11-05 21:04", 20, "paid", 200, 1, song="Gamma", artist="Bob"),
        ],
    )
    no_ts = _at("2018-11-06 09:40", 30, "free", 500, 2)
    del no_ts["ts"]
    write_day(
        root,
        [
            _at("2018-11-06 09:29", 10, "paid", 300, 0),  # Home: not a play, but paid now
            _at("2018-11-06 09:30", 10, "paid", 300, 1, song="Alpha", artist="Ann"),
            _at("2018-11-06 22:00", 20, "free", 400, 0, song="Unknown Song", artist="Nobody"),
            _at("2018-11-06 09:15", 30, "free", 500, 0, song="Gamma", artist="Bob"),
            _at("2018-11-06 09:20", 30, "free", 500, 1, song=" alpha ", artist="ANN"),
            no_ts,
            _at("2018-11-06 09:45", 30, "free", 500, 3, song="Gamma", artist="Bob")
            | {"sessionId": "abc"},
        ],
    )
    return root / "song_data", root / "log_data"


@pytest.fixture
def loaded(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    songs, logs = write_dataset(tmp_path / "data")
    result = warehouse.cli("etl", "--songs", str(songs), "--logs", str(logs), "-q")
    assert result.exit_code == 0, result.output
    return warehouse


def answer(warehouse: Warehouse, name: str, *args: str) -> list[dict[str, Any]]:
    result = warehouse.cli("query", name, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# name -> (columns, rows), as `sparkify query NAME --json` prints them
EXPECTED: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {
    "top_songs": (
        ("title", "artist", "plays"),
        [("Alpha", "Ann", 4), ("Gamma", "Bob", 2), ("Beta", "Ann", 1)],
    ),
    "top_artists": (("artist", "plays", "listeners"), [("Ann", 5, 3), ("Bob", 2, 2)]),
    "plays_by_hour": (("hour", "plays"), [(9, 6), (21, 2), (22, 1)]),
    "free_vs_paid": (
        ("level", "plays", "users", "share_pct"),
        [("free", 6, 3, 66.67), ("paid", 3, 2, 33.33)],
    ),
    "most_active_users": (
        ("user_id", "first_name", "last_name", "level", "plays", "sessions"),
        [
            (10, "Ada", "Lovelace", "paid", 4, 2),
            (20, "Grace", "Hopper", "free", 3, 2),
            (30, "Alan", "Turing", "free", 2, 1),
        ],
    ),
    "busiest_weekdays": (
        ("weekday", "day_name", "plays"),
        [(1, "Monday", 5), (2, "Tuesday", 4)],
    ),
    "plays_per_day": (
        ("day", "plays", "listeners", "paid_plays", "free_plays"),
        [("2018-11-05", 5, 2, 2, 3), ("2018-11-06", 4, 3, 1, 3)],
    ),
    "plays_per_period": (  # per day unless --grain says otherwise
        ("period", "plays", "listeners", "paid_plays", "free_plays"),
        [("2018-11-05", 5, 2, 2, 3), ("2018-11-06", 4, 3, 1, 3)],
    ),
    "weekday_hour": (
        ("weekday", "hour", "plays"),
        [(1, 9, 3), (1, 21, 2), (2, 9, 3), (2, 22, 1)],
    ),
    "song_match_rate": (
        ("plays", "matched_plays", "matched_pct", "catalogue_songs", "distinct_songs_played"),
        [(9, 7, 77.78, 4, 4)],
    ),
    "level_changes": (("day", "upgrades", "downgrades"), [("2018-11-06", 1, 1)]),
    "level_changes_per_period": (("period", "upgrades", "downgrades"), [("2018-11-06", 1, 1)]),
    "session_lengths": (("songs_in_session", "sessions"), [(1, 2), (2, 2), (3, 1)]),
    "summary": (
        ("plays", "listeners", "users", "songs", "artists", "paid_pct", "first_play", "last_play"),
        [(9, 3, 3, 4, 2, 33.33, "2018-11-05T09:00:00+00:00", "2018-11-06T22:00:00+00:00")],
    ),
    "recent_runs": (  # started_at and finished_at are checked apart: the clock moves
        (
            "run_id",
            "status",
            "files_new",
            "files_changed",
            "files_skipped",
            "lines_read",
            "rows_staged",
            "rows_rejected",
            "songplays_rows",
            "message",
            "unknown_fields",
        ),
        [(1, "succeeded", 7, 0, 0, 17, 14, 3, 9, None, None)],
    ),
    "load_health": (
        (
            "files",
            "lines_read",
            "rows_rejected",
            "runs",
            "failed_runs",
            "failed_runs_rejected",
            "runs_with_unknown_fields",
        ),
        [(7, 17, 3, 1, 0, 0, 0)],
    ),
    "unknown_fields": (("run_id", "unknown_fields"), []),
    "files_loaded": (
        ("kind", "files", "lines_read", "rows_staged", "rows_rejected", "last_run_id"),
        [("events", 2, 12, 10, 2, 1), ("songs", 5, 5, 4, 1, 1)],
    ),
    "rejects_by_reason": (
        ("reason", "rejected", "files"),
        [
            ("field 'sessionId': expected an integer, got 'abc'", 1, 1),
            ("missing required field 'song_id'", 1, 1),
            ("missing required field 'ts'", 1, 1),
        ],
    ),
    "rejects_by_file": (  # file relative to the dataset folder
        ("file", "reason", "rejected", "first_line"),
        [
            (EVENTS_DAY_2, "missing required field 'ts'", 1, 6),
            (EVENTS_DAY_2, "field 'sessionId': expected an integer, got 'abc'", 1, 7),
            ("song_data/A/B/C/TRBROKEN.json", "missing required field 'song_id'", 1, 1),
        ],
    ),
}


def test_every_query_has_an_expected_answer() -> None:
    # the questions over every event are answered in test_questions.py
    assert sorted([*EXPECTED, *QUESTIONS]) == sorted(q.name for q in analytics.QUERIES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_query_answers_exactly_on_the_known_dataset(
    loaded: Warehouse, tmp_path: Path, name: str
) -> None:
    rows = answer(loaded, name)
    if name == "recent_runs":
        for row in rows:  # the clock is not part of the answer, but it must be there
            assert dt.datetime.fromisoformat(row.pop("started_at"))
            assert dt.datetime.fromisoformat(row.pop("finished_at"))
    if name == "rejects_by_file":
        prefix = f"{(tmp_path / 'data').resolve()}/"
        assert all(row["file"].startswith(prefix) for row in rows)
        rows = [row | {"file": row["file"].removeprefix(prefix)} for row in rows]
    columns, expected = EXPECTED[name]
    assert [tuple(row) for row in rows] == [columns] * len(expected)
    assert [tuple(row.values()) for row in rows] == expected


def test_top_n_queries_return_at_most_limit_rows(loaded: Warehouse) -> None:
    for query in analytics.QUERIES:
        if query.limited:
            assert answer(loaded, query.name, "--limit", "1") == answer(loaded, query.name)[:1]


def test_recent_runs_lists_the_latest_run_first(loaded: Warehouse, tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--songs", str(data / "song_data"), "--logs", str(data / "log_data"), "-q")
    assert loaded.cli("etl", *args).exit_code == 0  # nothing changed: every file skipped
    runs = answer(loaded, "recent_runs")
    assert [(r["run_id"], r["files_new"], r["files_skipped"]) for r in runs] == [
        (2, 0, 7),
        (1, 7, 0),
    ]


def test_queries_on_an_empty_warehouse_return_zeros_not_errors(warehouse: Warehouse) -> None:
    assert warehouse.cli("create-tables", "-q").exit_code == 0
    assert answer(warehouse, "summary") == [
        {
            "plays": 0,
            "listeners": 0,
            "users": 0,
            "songs": 0,
            "artists": 0,
            "paid_pct": None,
            "first_play": None,
            "last_play": None,
        },
    ]
    assert answer(warehouse, "song_match_rate") == [
        {
            "plays": 0,
            "matched_plays": None,
            "matched_pct": None,
            "catalogue_songs": 0,
            "distinct_songs_played": 0,
        },
    ]
    assert answer(warehouse, "load_health") == [
        {
            "files": 0,
            "lines_read": None,
            "rows_rejected": 0,
            "runs": 0,
            "failed_runs": 0,
            "failed_runs_rejected": 0,
            "runs_with_unknown_fields": 0,
        },
    ]
    assert answer(warehouse, "conversion") == [  # the funnel's steps, always
        {"step": step, "users": 0, "share": None, "median_days": None, "mean_days": None}
        for step in ("saw_free", "visited_upgrade", "submitted_upgrade", "paid")
    ]
    for query in analytics.QUERIES:
        if query.name not in ("summary", "song_match_rate", "load_health", "conversion"):
            assert answer(warehouse, query.name) == [], query.name


# -- parameters: a range of days and a grain ------------------------------------------------


def test_grain_counts_per_week_and_month(loaded: Warehouse) -> None:
    week = [{"period": "2018-11-05", "plays": 9, "listeners": 3, "paid_plays": 3, "free_plays": 6}]
    assert answer(loaded, "plays_per_period", "--grain", "week") == week  # weeks start Monday
    month = [week[0] | {"period": "2018-11-01"}]
    assert answer(loaded, "plays_per_period", "--grain", "month") == month
    assert answer(loaded, "level_changes_per_period", "--grain", "month") == [
        {"period": "2018-11-01", "upgrades": 1, "downgrades": 1}
    ]


def test_since_and_until_keep_the_plays_of_those_days(loaded: Warehouse) -> None:
    day_2 = ("--since", "2018-11-06", "--until", "2018-11-06")
    assert answer(loaded, "plays_per_day", *day_2) == answer(loaded, "plays_per_day")[1:]
    assert (
        answer(loaded, "plays_per_day", "--until", "2018-11-05")
        == answer(loaded, "plays_per_day")[:1]
    )
    [summary] = answer(loaded, "summary", *day_2)
    assert (summary["plays"], summary["listeners"], summary["songs"]) == (4, 3, 4)
    assert summary["first_play"] == "2018-11-06T09:15:00+00:00"
    assert answer(loaded, "top_songs", *day_2) == [
        {"title": "Alpha", "artist": "Ann", "plays": 2},
        {"title": "Gamma", "artist": "Bob", "plays": 1},
    ]
    assert answer(loaded, "free_vs_paid", *day_2) == [
        {"level": "free", "plays": 3, "users": 2, "share_pct": 75.0},
        {"level": "paid", "plays": 1, "users": 1, "share_pct": 25.0},
    ]
    [matches] = answer(loaded, "song_match_rate", *day_2)
    assert (matches["plays"], matches["matched_plays"], matches["distinct_songs_played"]) == (
        4,
        3,
        3,
    )
    assert answer(loaded, "level_changes", "--until", "2018-11-05") == []


def test_every_dated_query_keeps_all_of_a_range_around_the_data_and_none_outside(
    loaded: Warehouse,
) -> None:
    dated = [q.name for q in analytics.QUERIES if q.ranged]
    assert len(dated) >= 12
    for name in dated:
        everything = answer(loaded, name)
        assert answer(loaded, name, "--since", "2018-11-05", "--until", "2018-11-06") == everything
        outside = answer(loaded, name, "--since", "2018-11-07")
        if name in ("summary", "song_match_rate"):  # one row of zeros
            assert outside[0]["plays"] == 0, name
        elif name == "conversion":  # the funnel's four steps, of nobody
            assert [row["users"] for row in outside] == [0, 0, 0, 0], name
        else:
            assert outside == [], name


def test_bad_parameters_are_one_error_line_and_exit_2(loaded: Warehouse) -> None:
    cases = {
        ("top_songs", "--since", "2018-02-30"): (
            "error: --since must be a date like 2018-11-01, got '2018-02-30'\n"
        ),
        ("top_songs", "--since", "2018-11-06", "--until", "2018-11-05"): (
            "error: --since 2018-11-06 is after --until 2018-11-05\n"
        ),
        ("recent_runs", "--since", "2018-11-06"): (
            "error: query recent_runs takes no --since (it takes --limit)\n"
        ),
    }
    for args, error in cases.items():
        result = loaded.cli("query", *args)
        assert (result.exit_code, result.stderr) == (2, error), args


# -- the catalogue in docs/queries.md -------------------------------------------------------


def documented() -> dict[str, dict[str, Any]]:
    """``## `name` `` sections with their **Question:** and **Columns:** lines."""
    sections = re.split(r"^## `(\w+)`\s*$", DOCS.read_text("utf-8"), flags=re.MULTILINE)
    found = {}
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        question = re.search(r"^\*\*Question:\*\* (.+)$", body, re.MULTILINE)
        columns = re.search(r"^\*\*Columns:\*\* (.+)$", body, re.MULTILINE)
        found[name] = {
            "question": question.group(1).strip() if question else None,
            "columns": re.findall(r"`(\w+)`", columns.group(1)) if columns else None,
        }
    return found


def test_docs_catalogue_lists_every_query_with_its_question() -> None:
    docs = documented()
    assert list(docs) == [q.name for q in analytics.QUERIES]  # same names, same order
    for query in analytics.QUERIES:
        assert docs[query.name]["question"] == query.question, query.name


def test_docs_catalogue_lists_the_columns_each_query_returns(loaded: Warehouse) -> None:
    docs = documented()
    for query in analytics.QUERIES:
        result = loaded.cli("query", query.name, "--csv")
        assert result.exit_code == 0, result.output
        assert docs[query.name]["columns"] == result.stdout.splitlines()[0].split(","), query.name

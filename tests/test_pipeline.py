"""End-to-end behaviour of `sparkify etl` on every backend: figures, semantics, increments."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import SAMPLE_TABLES, Warehouse, dump, etl
from datasets import DAY_MS, NOV_1, copy_days, event_days, play, song, write_day, write_song

from sparkify.pipeline import ensure_tables
from sparkify.records import FIELDS
from sparkify.schema import Statements


def test_the_public_sample_gives_the_known_figures(warehouse: Warehouse, sample_data: Path) -> None:
    summary = etl(warehouse, sample_data)
    tables = {k: v for k, v in summary["tables"].items() if k != "user_levels"}
    assert tables == SAMPLE_TABLES
    assert warehouse.query("SELECT COUNT(*) FROM sessions WHERE user_id IS NULL") == [(30,)]
    assert warehouse.query("SELECT COUNT(*) FROM staging_events") == [(8056,)]
    assert warehouse.query("SELECT COUNT(*) FROM songplays WHERE song_id IS NOT NULL") == [(1,)]
    assert summary["rows_rejected"] == 0
    assert all(check["passed"] for check in summary["checks"])


def test_star_schema_semantics(warehouse: Warehouse, semantics_data: Path) -> None:
    etl(warehouse, semantics_data)
    plays = warehouse.query(
        "SELECT songplay_id, start_time, user_id, level, song_id, artist_id "
        "FROM songplays ORDER BY songplay_id"
    )
    start = dt.datetime(2018, 11, 1, 10, 0, 0, 123000)
    assert plays == [
        # closest duration wins among same title and artist, matched case-insensitively
        (10_000_000, start, 1, "free", "SO2", "AR1"),
        # a numeric title is kept as text and still matches
        (10_000_002, start + dt.timedelta(seconds=2), 1, "paid", "SO3", "AR3"),
        # no match: the play is still recorded
        (11_000_000, start + dt.timedelta(seconds=3), 2, "free", None, None),
    ]
    assert warehouse.query("SELECT user_id, first_name, level FROM users ORDER BY user_id") == [
        (1, "First1", "paid"),  # the latest event's level wins
        (2, "First2", "free"),
    ]
    assert warehouse.query("SELECT title FROM songs WHERE song_id = 'SO3'") == [("66",)]
    assert warehouse.query(
        "SELECT hour, day, week, month, year, weekday FROM time ORDER BY start_time LIMIT 1"
    ) == [(10, 1, 44, 11, 2018, 4)]
    assert warehouse.query(
        "SELECT user_id, level, valid_from, valid_to FROM user_levels ORDER BY user_id, valid_from"
    ) == [
        (1, "free", start, start + dt.timedelta(seconds=2)),
        (1, "paid", start + dt.timedelta(seconds=2), None),
        (2, "free", start + dt.timedelta(seconds=3), None),
    ]


def test_events_without_a_level_neither_start_nor_break_a_level_stretch(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    second = 1000
    levels = ["free", None, "free", "paid", None]
    events = [play(NOV_1 + n * second, 1, 1, n, level=level) for n, level in enumerate(levels)]
    events[-1]["firstName"] = "Latest"
    write_song(tmp_path, song("SO1", "A", "Band", 1.0))
    write_day(tmp_path, events)
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT user_id, first_name, level FROM users") == [(1, "Latest", None)]
    start = dt.datetime(2018, 11, 1)
    assert warehouse.query(
        "SELECT level, valid_from, valid_to FROM user_levels ORDER BY valid_from"
    ) == [
        ("free", start, start + dt.timedelta(seconds=3)),
        ("paid", start + dt.timedelta(seconds=3), None),
    ]


def test_a_rejected_line_keeps_its_raw_text_even_with_a_nul_byte(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    write_song(tmp_path, song("SO1", "A", "Band", 1.0))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0)], [b'{"bad\x00": 1'])
    summary = etl(warehouse, tmp_path)
    assert summary["rows_rejected"] == 1
    assert warehouse.query("SELECT line_no, raw FROM etl_rejects") == [(2, '{"bad\\x00": 1')]


def test_a_run_affecting_every_key_leaves_out_the_affected_key_filters() -> None:
    statements = Statements(("postgres", "common"))
    for step in ("upsert_songplays", "collect_user_changes", "upsert_users", "refresh_time"):
        some = " ".join(statements.get(step))
        every = " ".join(statements.get(step, all_keys=True))
        assert "affected_" in some and "affected_" not in every, step
    assert statements.get("upsert_users", all_keys=True)[0] == "DELETE FROM users"


def test_titles_match_across_case_and_unicode_spaces(warehouse: Warehouse, tmp_path: Path) -> None:
    write_song(tmp_path, song("SO1", "\u00a0Ça Va Straße ", "Beyoncé", 100.0))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0, song="ÇA VA STRASSE", artist="BEYONCÉ\u3000")])
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT song_id FROM songplays") == [("SO1",)]


def test_artists_prefer_records_with_a_location(warehouse: Warehouse, tmp_path: Path) -> None:
    write_song(tmp_path, song("SO1", "A", "Artist", 1.0, artist_id="ARX", artist_location=""))
    write_song(tmp_path, song("SO2", "B", "Artist", 1.0, artist_id="ARX", artist_location="Oslo"))
    write_song(tmp_path, song("SO3", "C", "Artist", 1.0, artist_id="ARX"), "ZZZ")
    write_day(tmp_path, [play(NOV_1, 1, 1, 0)])
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT artist_id, location FROM artists") == [("ARX", "Oslo")]


def test_a_rerun_changes_nothing(warehouse: Warehouse, generated: Path) -> None:
    first = etl(warehouse, generated)
    before = dump(warehouse)
    second = etl(warehouse, generated)
    assert second["files"] == {"new": 0, "changed": 0, "skipped": first["files"]["new"]}
    assert second["lines_read"] == 0
    assert dump(warehouse) == before


def test_split_and_backfilled_loads_equal_one_load(
    new_warehouse: Callable[[], Warehouse], generated: Path, tmp_path: Path
) -> None:
    at_once = new_warehouse()
    etl(at_once, generated)
    expected = dump(at_once)
    days = event_days(generated)
    middle = days[len(days) // 2]

    split = new_warehouse()
    growing = copy_days(generated, tmp_path / "growing", days[: len(days) // 2])
    etl(split, growing)
    copy_days(generated, growing, days)
    etl(split, growing)
    assert dump(split) == expected

    backfill = new_warehouse()
    etl(backfill, generated, "--since", middle)
    etl(backfill, generated, "--until", middle)
    assert dump(backfill) == expected


def test_backfills_and_changed_old_files_give_the_tables_of_one_load(
    new_warehouse: Callable[[], Warehouse], tmp_path: Path
) -> None:
    """A run reads the history from the earliest time it touches (users, user_levels), the
    sessions it touches (songplays) and the start times its plays had and have (time): a
    late day whose sessions lie far below the loaded ones, a changed old file that takes a
    user's latest events away, and a later copy of an old play must all give the tables of
    one load of the same files."""
    write_song(tmp_path, song("SO1", "Song One", "The Band", 200.0))
    day = [NOV_1 + n * DAY_MS for n in range(4)]
    tune = {"song": "Song One", "artist": "The Band", "length": 200.0}
    first = write_day(tmp_path, [
        play(day[0] + 1000, 1, 100, 0, **tune),
        play(day[0] + 2000, 2, 101, 0, level="paid"),
        play(day[0] + 3000, 2, 101, 1, level="paid", firstName="Old"),
    ])  # fmt: skip
    write_day(tmp_path, [
        play(day[2] + 1000, 1, 300, 0, level="paid"),
        play(day[2] + 5000, 2, 301, 0, level="free"),
        play(day[2] + 6000, 3, 302, 0, level=None),
    ])  # fmt: skip
    incremental = new_warehouse()

    def same_as_one_load() -> None:
        at_once = new_warehouse()
        etl(at_once, tmp_path)
        assert dump(incremental) == dump(at_once)

    etl(incremental, tmp_path)
    # A late day, sessions far below: user 1 turns paid a day earlier, then free again.
    write_day(tmp_path, [
        play(day[1] + 1000, 1, 5, 0, level="paid", **tune),
        play(day[1] + 2000, 1, 5, 1, level="free"),
        play(day[1] + 3000, 3, 6, 0, level="free"),
    ])  # fmt: skip
    assert etl(incremental, tmp_path)["files"]["new"] == 1
    same_as_one_load()
    # The first day changes: user 2's events there go but one; user 1's play moves on.
    first.write_bytes(b"\n".join([
        orjson.dumps(play(day[0] + 1500, 1, 100, 0, **tune)),
        orjson.dumps(play(day[0] + 2000, 2, 101, 0, level="free")),
    ]))  # fmt: skip
    assert etl(incremental, tmp_path)["files"]["changed"] == 1
    same_as_one_load()
    # A new day holds a later copy of a day-3 play: that play's start time changes.
    write_day(tmp_path, [
        play(day[3] + 1000, 3, 400, 0, level="paid"),
        play(day[2] + 9000, 1, 300, 0, level="paid"),
    ])  # fmt: skip
    assert etl(incremental, tmp_path)["files"]["new"] == 1
    same_as_one_load()
    assert incremental.query("SELECT COUNT(*) FROM time WHERE start_time = "
                             "TIMESTAMP '2018-11-03 00:00:01'") == [(0,)]  # fmt: skip


def test_a_changed_file_is_reloaded_without_duplicates(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    etl(warehouse, semantics_data)
    [day_file] = (semantics_data / "log_data").rglob("*.json")
    lines = day_file.read_bytes().split(b"\n")
    day_file.write_bytes(b"\n".join(lines[:3]))  # user 2's play disappears
    summary = etl(warehouse, semantics_data)
    assert summary["files"]["changed"] == 1
    assert summary["files"]["new"] == 0
    assert warehouse.query("SELECT COUNT(*) FROM songplays") == [(2,)]
    assert warehouse.query("SELECT user_id FROM users") == [(1,)]


def test_changed_and_new_files_in_one_run_equal_one_load(
    new_warehouse: Callable[[], Warehouse], generated: Path, tmp_path: Path
) -> None:
    """The changed file's rows go into the same bulk load as the new file's, after its old
    rows have left staging."""
    days = event_days(generated)
    data = copy_days(generated, tmp_path / "data", days[:2])
    incremental = new_warehouse()
    etl(incremental, data)
    first_day = sorted((data / "log_data").rglob("*.json"))[0]
    first_day.write_bytes(b"\n".join(first_day.read_bytes().split(b"\n")[:-5]))
    copy_days(generated, data, days[2:3])
    summary = etl(incremental, data)
    assert (summary["files"]["changed"], summary["files"]["new"]) == (1, 1)
    at_once = new_warehouse()
    etl(at_once, data)
    assert dump(incremental) == dump(at_once)


def test_a_touched_but_identical_file_is_not_reloaded(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    etl(warehouse, semantics_data)
    [day_file] = (semantics_data / "log_data").rglob("*.json")
    day_file.write_bytes(day_file.read_bytes())  # new modification time, same content
    summary = etl(warehouse, semantics_data)
    assert summary["files"] == {"new": 0, "changed": 0, "skipped": 6}


def test_late_arriving_songs_fill_earlier_songplays(warehouse: Warehouse, tmp_path: Path) -> None:
    write_song(tmp_path, song("SO1", "Early", "Band", 100.0))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0, song="Late Song", artist="Band", length=90.0)])
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT song_id FROM songplays") == [(None,)]
    write_song(tmp_path, song("SO9", "Late Song", "Band", 91.0))
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT song_id, artist_id FROM songplays") == [("SO9", "AR9")]


def test_full_refresh_rebuilds_the_same_tables(warehouse: Warehouse, generated: Path) -> None:
    first = etl(warehouse, generated)
    before = dump(warehouse)
    again = etl(warehouse, generated, "--full-refresh")
    assert again["files"]["new"] == first["files"]["new"]
    assert dump(warehouse) == before


def test_since_and_until_select_event_files_by_date(warehouse: Warehouse, generated: Path) -> None:
    days = event_days(generated)
    summary = etl(warehouse, generated, "--since", days[1], "--until", days[2])
    song_files = len(list((generated / "song_data").rglob("*.json")))
    assert summary["files"]["new"] == song_files + 2
    loaded = warehouse.query("SELECT MIN(start_time), MAX(start_time) FROM songplays")[0]
    assert str(loaded[0].date()) >= days[1]
    assert str(loaded[1].date()) <= days[2]


def test_bad_dates_are_usage_errors(warehouse: Warehouse, generated: Path) -> None:
    result = warehouse.cli("etl", "--logs", str(generated / "log_data"), "--since", "nov 1")
    assert result.exit_code == 2
    assert result.stderr == "error: --since must be a date like 2018-11-01, got 'nov 1'\n"


def test_missing_input_is_a_clear_error(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = warehouse.cli(
        "etl", "--songs", str(tmp_path / "nope"), "--logs", str(tmp_path / "logs")
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: no such file or directory: {tmp_path / 'nope'}\n"


@pytest.fixture
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from sparkify.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("faulty")
    summary = generate(out, GenerateOptions(users=20, days=4, songs=40, bad_records=0.02))
    return out, summary.bad_records


def test_bad_records_are_quarantined_with_a_reason(
    warehouse: Warehouse, faulty: tuple[Path, dict]
) -> None:
    data, faults = faulty
    summary = etl(warehouse, data)
    assert summary["rows_rejected"] == sum(faults.values()) > 0
    assert summary["lines_read"] == summary["rows_staged"] + summary["rows_rejected"]
    assert all(check["passed"] for check in summary["checks"])
    listed = warehouse.cli("rejects", "--json", "--limit", "10000")
    rejects = json.loads(listed.stdout)
    assert len(rejects) == summary["rows_rejected"]
    assert all(r["reason"] and r["raw"] and r["line_no"] >= 1 for r in rejects)
    assert {r["run_id"] for r in rejects} == {summary["run_id"]}
    staged = warehouse.query("SELECT COUNT(*) FROM staging_events")[0][0]
    ledger = warehouse.query(
        "SELECT SUM(lines_read), SUM(rows_staged), SUM(rows_rejected) "
        "FROM etl_files WHERE kind = 'events'"
    )[0]
    assert ledger[0] == ledger[1] + ledger[2] and ledger[1] == staged


def test_too_many_rejects_abort_with_exit_3_and_roll_back(
    warehouse: Warehouse, faulty: tuple[Path, dict]
) -> None:
    data, _ = faulty
    result = warehouse.cli(
        "etl",
        "--songs",
        str(data / "song_data"),
        "--logs",
        str(data / "log_data"),
        "--max-errors",
        "1",
    )
    assert result.exit_code == 3
    assert "more than --max-errors 1; the run was rolled back" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "First rejects: /" in result.stderr and "-events.json:" in result.stderr
    assert warehouse.query("SELECT COUNT(*) FROM staging_events") == [(0,)]
    assert warehouse.query("SELECT status, message FROM etl_runs") == [
        ("failed", "too many rejected records")
    ]


def test_check_fails_with_exit_4_when_the_data_is_wrong(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    etl(warehouse, semantics_data)
    assert warehouse.cli("check").exit_code == 0
    backend = warehouse.backend()
    backend.connect()
    with backend.transaction():  # DuckDB writes only inside one (a copy, swapped in)
        backend.execute("UPDATE songplays SET user_id = 999 WHERE user_id = 2")
        backend.execute("DELETE FROM time")
    backend.close()
    result = warehouse.cli("check", "--json")
    assert result.exit_code == 4
    failing = {c["name"] for c in json.loads(result.stdout) if not c["passed"]}
    assert failing == {"songplays_users", "songplays_time"}


def test_rejects_json_has_file_and_line(warehouse: Warehouse, tmp_path: Path) -> None:
    write_song(tmp_path, song("SO1", "A", "B", 1.0))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0)], [b'{"broken": ', orjson.dumps([1])])
    etl(warehouse, tmp_path)
    rejects = json.loads(warehouse.cli("rejects", "--json").stdout)
    assert [(Path(r["file"]).name, r["line_no"], r["reason"][:12]) for r in rejects] == [
        ("2018-11-01-events.json", 2, "invalid JSON"),
        ("2018-11-01-events.json", 3, "expected a J"),
    ]


def test_the_time_dimension_follows_songplays_after_a_change(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    write_song(tmp_path, song("SO1", "A", "B", 1.0))
    day = write_day(tmp_path, [play(NOV_1, 1, 1, 0), play(NOV_1 + DAY_MS // 2, 1, 1, 1)])
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT COUNT(*) FROM time") == [(2,)]
    day.write_bytes(day.read_bytes().split(b"\n")[0])
    etl(warehouse, tmp_path)
    assert warehouse.query("SELECT COUNT(*) FROM time") == [(1,)]


def test_a_deleted_source_folder_is_not_a_silent_success(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    write_song(data, song("SO1", "A", "B", 1.0))
    write_day(data, [play(NOV_1, 1, 1, 0)])
    etl(warehouse, data)
    shutil.rmtree(data / "log_data")
    result = warehouse.cli(
        "etl", "--songs", str(data / "song_data"), "--logs", str(data / "log_data")
    )
    assert result.exit_code == 2


def test_a_huge_valid_record_is_rejected_and_the_rest_loads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A 20 MB title, a 17 MB userAgent: once every DuckDB load failed on its buffer."""
    write_song(tmp_path, song("SO1", "x" * 20_000_000, "Band", 1.0))
    write_song(tmp_path, song("SO2", "Fine", "Band", 1.0))
    write_day(
        tmp_path, [play(NOV_1, 1, 1, 0, userAgent="u" * 17_000_000), play(NOV_1 + 1, 1, 1, 1)]
    )
    for _ in range(2):  # the rerun has nothing to do
        summary = etl(warehouse, tmp_path)
        assert summary["tables"]["songs"] == 1 and summary["tables"]["songplays"] == 1
    assert sorted(r[0] for r in warehouse.query("SELECT reason FROM etl_rejects")) == [
        "field 'title': text longer than 1024 bytes (20000000 bytes)",
        "field 'userAgent': text longer than 1024 bytes (17000000 bytes)",
    ]


def test_a_record_at_every_width_loads(warehouse: Warehouse, tmp_path: Path) -> None:
    """Each text at its width, in characters JSON writes six bytes wide (no buffer limit)."""
    widest = {f.key: "\x01" * f.max_bytes for f in FIELDS["events"] if f.max_bytes}
    write_song(tmp_path, song("SO1", "\x01" * 1024, "\x01" * 1024, 1.0, artist_location="\x01"))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0, **widest)])
    summary = etl(warehouse, tmp_path)
    assert (summary["rows_staged"], summary["rows_rejected"]) == (2, 0)
    assert warehouse.query("SELECT LENGTH(user_agent) FROM staging_events") == [(1024,)]


def test_fields_no_column_holds_are_reported_per_run(warehouse: Warehouse, tmp_path: Path) -> None:
    """Schema drift is seen: the run summary, etl_runs and the report name new fields."""
    write_song(tmp_path, song("SO1", "T", "A", 1.0, genre="jazz"))
    plays = [play(NOV_1, 1, 1, 0, country="PT", device="phone"), play(NOV_1 + 1, 1, 1, 1)]
    write_day(tmp_path, [*plays, play(NOV_1 + 2, 1, 1, 2, country="FR")])
    summary = etl(warehouse, tmp_path)
    unknown = {"events": {"country": 2, "device": 1}, "songs": {"genre": 1}}
    assert summary["unknown_fields"] == unknown
    [(recorded,)] = warehouse.query("SELECT unknown_fields FROM etl_runs")
    assert json.loads(recorded) == unknown
    paths = ("--songs", str(tmp_path / "song_data"), "--logs", str(tmp_path / "log_data"))
    human = warehouse.cli("etl", *paths, "--full-refresh")
    assert human.exit_code == 0, human.stderr
    assert "fields not loaded: events: country (2), device (1); songs: genre (1)" in human.stdout
    runs = json.loads(warehouse.cli("query", "recent_runs", "--json").stdout)
    assert [json.loads(r["unknown_fields"]) for r in runs] == [unknown, unknown]
    report = warehouse.cli("report", "--out", str(tmp_path / "report.html"))
    assert report.exit_code == 0, report.stderr
    assert "{&#34;events&#34;: {&#34;country&#34;: 2" in (tmp_path / "report.html").read_text()
    assert etl(warehouse, tmp_path)["unknown_fields"] == {}  # nothing read, nothing new


def test_a_warehouse_from_before_unknown_fields_gets_the_column(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    backend = warehouse.backend()
    backend.connect()
    try:
        with backend.transaction():
            ensure_tables(backend)
            backend.execute("ALTER TABLE etl_runs DROP COLUMN unknown_fields")
    finally:
        backend.close()
    assert etl(warehouse, semantics_data)["tables"]["songplays"] == 3
    assert warehouse.query("SELECT unknown_fields FROM etl_runs") == [(None,)]


def test_failure_messages_fit_a_byte_width() -> None:
    from sparkify.pipeline import _fit

    assert _fit("é" * 600, 1000) == "é" * 500
    assert _fit("é" * 600, 999) == "é" * 499  # never half a character


def test_bookkeeping_rows_keep_tricky_text_and_timestamps(warehouse: Warehouse) -> None:
    """insert_rows (COPY on PostgreSQL) keeps separators, escapes and NULL apart."""
    texts = ['a,b "quoted"', "line\nbreak\r\n", "back\\slash \\N", "\\.", "Ça 日本\t", "", None]
    started = dt.datetime(2018, 11, 1, 23, 59, 59, 123000)
    rows = [(n, started, None, "failed", text) for n, text in enumerate(texts, start=1)]
    with warehouse.backend() as backend:
        with backend.transaction():
            ensure_tables(backend)
            columns = ("run_id", "started_at", "finished_at", "status", "message")
            backend.insert_rows("etl_runs", columns, rows)
        found = backend.query(f"SELECT {', '.join(columns)} FROM etl_runs ORDER BY run_id")
    assert [tuple(row) for row in found.rows] == rows


def test_ledger_rows_keep_wide_integers_and_any_url(warehouse: Warehouse) -> None:
    """insert_rows of many ledger rows (a file of JSON arrays read by DuckDB, COPY on
    PostgreSQL) gives back every value as it was: integers beyond a double's precision,
    URLs with quotes, commas, brackets, backslashes and any character."""
    from sparkify.plan import LEDGER_COLUMNS

    urls = ['/d/a "b",c', "/d/[1, 2]\\x\n", "/d/Ça 日本\ttab", "/d/" + "é" * 490]
    rows = [
        (
            2**31 - n,
            f"{url}-{n}.json",
            "songs",
            2**53 + n,
            str(10**18 + n),
            f"fp{n}",
            n,
            n,
            2**62,
            1,
            0,
        )
        for n, url in enumerate(urls * 500, start=1)
    ]
    with warehouse.backend() as backend:
        with backend.transaction():
            ensure_tables(backend)
            backend.insert_rows("etl_files", LEDGER_COLUMNS, rows)
        found = backend.query(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM etl_files ORDER BY file_id")
    assert [tuple(row) for row in found.rows] == rows[::-1]


def test_a_run_pauses_the_cyclic_garbage_collector_and_resumes_it(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The collector is off during a run (its per-file objects are not walked again and
    again) and back on after it, also after a failed run; parse workers have it on."""
    import gc

    from sparkify import parsing
    from sparkify.pipeline import cyclic_gc_paused

    with cyclic_gc_paused():
        assert not gc.isenabled()
        with parsing.Parser(tmp_path, "json") as parser:
            assert parser.pool().submit(gc.isenabled).result()
        with pytest.raises(ValueError), cyclic_gc_paused():
            raise ValueError
        assert not gc.isenabled()  # it was off: a nested pause leaves it off
    assert gc.isenabled()
    failed = warehouse.cli("etl", "--songs", str(tmp_path / "none"), "--logs", str(tmp_path))
    assert failed.exit_code != 0 and gc.isenabled()


def test_a_failed_run_keeps_its_rejects(warehouse: Warehouse, faulty: tuple[Path, dict]) -> None:
    data, faults = faulty
    songs, logs = str(data / "song_data"), str(data / "log_data")
    failed = warehouse.cli("etl", "--songs", songs, "--logs", logs, "--max-errors", "1")
    assert failed.exit_code == 3
    assert "`sparkify rejects --run 1` lists them" in failed.stderr
    kept = json.loads(warehouse.cli("rejects", "--run", "1", "--json", "--limit", "1000").stdout)
    assert len(kept) > 1
    assert all(r["run_id"] == 1 and r["file"].startswith(str(data)) for r in kept)
    assert all(r["line_no"] > 0 and r["reason"] and r["raw"] for r in kept)
    for table in ("staging_events", "staging_songs", "etl_files", "etl_rejects", "songplays"):
        assert warehouse.query(f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    assert warehouse.query("SELECT run_id, status FROM etl_runs") == [(1, "failed")]

    loaded = etl(warehouse, data)  # the input accepted as it is: run 2 loads it
    assert loaded["run_id"] == 2 and all(c["passed"] for c in loaded["checks"])
    again = json.loads(warehouse.cli("rejects", "--run", "1", "--json", "--limit", "1000").stdout)
    assert again == kept
    latest = json.loads(warehouse.cli("rejects", "--run", "2", "--json", "--limit", "1000").stdout)
    assert len(latest) == sum(faults.values())
    assert {(r["file"], r["line_no"]) for r in kept} <= {(r["file"], r["line_no"]) for r in latest}
    assert warehouse.cli("check").exit_code == 0

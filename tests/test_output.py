"""What the commands print: text from the data is shown as plain, escaped text; CSV and JSON
carry exact values."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import Warehouse, etl
from datasets import NOV_1, play, song, write_day, write_song

from sparkify.cli.common import format_cell
from sparkify.text import printable

# Text that a terminal or Rich would act on: markup, hyperlinks, escape sequences (window
# title, screen clearing, the 8-bit CSI), bidirectional overrides, line breaks.
HOSTILE_TEXTS = [
    "[/]",
    "[/bold] x",
    "[bold red]loud[/]",
    "[link=https://evil.example/]click[/link]",
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "\x1b]0;pwned\x07title",
    "\x1b[2J\x1b[Hcleared",
    "bell\x07",
    "cr\roverwrite",
    "\x9b31mred",
    "\u202eevil.exe",
    "two\nlines",
    "tab\there",
    "del\x7f",
]
ONE_LINE_TEXTS = [text for text in HOSTILE_TEXTS if "\n" not in text]  # as a line of a file
# What must never reach the terminal from the data: Rich's own styling uses plain SGR codes
# (ESC [ ... m), so the check looks for everything else a terminal acts on.
FORBIDDEN = ["\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\r", "\x9b", "\u202e", "\x7f"]


def terminal_env() -> dict[str, str]:
    """Make Rich render as on a real terminal (colours, hyperlinks), wide enough for a row."""
    return {"FORCE_COLOR": "1", "COLUMNS": "400", "TERM": "xterm-256color"}


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=repr)
def test_printable_escapes_what_a_terminal_would_act_on(text: str) -> None:
    shown = printable(text)
    assert not any(c in shown for c in [*FORBIDDEN, "\n", "\t"])
    assert shown.isprintable()


def test_printable_keeps_ordinary_text() -> None:
    assert printable("Des'ree — Café [live] ünïcode 🎵") == "Des'ree — Café [live] ünïcode 🎵"
    assert printable("a\x1bb\nc\td\x00") == "a\\x1bb\\nc\\td\\x00"


@pytest.fixture
def hostile_data(tmp_path: Path) -> Path:
    """Every hostile text as a song title with one play, and as a rejected line."""
    events = []
    for n, text in enumerate(HOSTILE_TEXTS):
        song_id = f"SO{n}"
        write_song(tmp_path, song(song_id, text, f"artist {n}", 100.0 + n))
        events.append(
            play(NOV_1 + n * 1000, 1, 1, n, song=text, artist=f"artist {n}", length=100.0 + n)
        )
    raw = [b'{"ts": "' + text.encode() + b'"' for text in ONE_LINE_TEXTS]
    write_day(tmp_path, events, raw)
    bad_name = tmp_path / "song_data" / "A" / "TR\x1b]0;pwned\x07[bold].json"
    bad_name.write_bytes(b"{not json")
    return tmp_path


def assert_shown_escaped(output: str) -> None:
    for forbidden in FORBIDDEN:
        assert forbidden not in output, repr(forbidden)
    assert "\x1b]8;" not in output  # no hyperlink


@pytest.mark.parametrize("env", [{"COLUMNS": "400"}, terminal_env()], ids=["piped", "terminal"])
def test_titles_from_the_data_are_printed_as_plain_text(
    warehouse: Warehouse, hostile_data: Path, env: dict[str, str]
) -> None:
    etl(warehouse, hostile_data)
    for args in (
        ["query", "top_songs", "--limit", "50"],
        ["query", "--sql", 'SELECT title, artist_id AS "[/]" FROM songs ORDER BY song_id'],
    ):
        result = warehouse.cli(*args, env=env)
        assert result.exit_code == 0, result.stderr
        assert_shown_escaped(result.stdout)
        assert ("\x1b[" in result.stdout) == ("FORCE_COLOR" in env)  # styled on a terminal
        for text in HOSTILE_TEXTS:
            assert printable(text) in result.stdout, text
        assert "[/]" in result.stdout


@pytest.mark.parametrize("env", [{"COLUMNS": "400"}, terminal_env()], ids=["piped", "terminal"])
def test_rejected_lines_and_file_names_are_printed_as_plain_text(
    warehouse: Warehouse, hostile_data: Path, env: dict[str, str]
) -> None:
    etl(warehouse, hostile_data)
    result = warehouse.cli("rejects", "--limit", "100", env=env)
    assert result.exit_code == 0, result.stderr
    assert_shown_escaped(result.stdout)
    assert "[/bold] x" in result.stdout
    assert printable("TR\x1b]0;pwned\x07[bold].json") in result.stdout
    as_json = json.loads(warehouse.cli("rejects", "--json", "--limit", "100").stdout)
    assert {r["raw"] for r in as_json} >= {'{"ts": "' + t + '"' for t in ONE_LINE_TEXTS}


def test_the_run_summary_and_errors_escape_file_names(warehouse: Warehouse, tmp_path: Path) -> None:
    write_song(tmp_path, song("SO1", "x", "y", 1.0))
    write_day(tmp_path, [play(NOV_1, 1, 1, 0)], [b"\x1b]0;pwned\x07[/bold]"])
    result = warehouse.cli(
        "etl",
        "--songs",
        str(tmp_path / "song_data"),
        "--logs",
        str(tmp_path / "log_data"),
        env=terminal_env(),
    )
    assert result.exit_code == 0, result.stderr
    assert_shown_escaped(result.stdout + result.stderr)
    missing = warehouse.cli("etl", "--songs", "/nonexistent/\x1b[2J", "--logs", "/nonexistent/x")
    assert missing.exit_code == 2
    assert_shown_escaped(missing.stderr)
    assert "\\x1b[2J" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


EXACT_SQL = (
    "SELECT CAST(1234567.891 AS DOUBLE PRECISION) AS big, CAST(1e-7 AS DOUBLE PRECISION) AS tiny,"
    " CAST(0.1 AS DOUBLE PRECISION) AS tenth,"
    " CAST('12345678901234567890.123456789' AS DECIMAL(38, 9)) AS exact,"
    " CAST('2018-11-01 10:00:00.123' AS TIMESTAMP) AS at,"
    " CAST('2018-11-01' AS DATE) AS day, CAST(NULL AS INTEGER) AS nothing"
)


def test_csv_and_json_carry_exact_values_and_utc_timestamps(warehouse: Warehouse) -> None:
    assert warehouse.cli("create-tables").exit_code == 0
    as_csv = warehouse.cli("query", "--sql", EXACT_SQL, "--csv")
    assert as_csv.exit_code == 0, as_csv.stderr
    [header, row] = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert header == ["big", "tiny", "tenth", "exact", "at", "day", "nothing"]
    assert row == [
        "1234567.891",
        "1e-07",
        "0.1",
        "12345678901234567890.123456789",
        "2018-11-01T10:00:00.123000+00:00",
        "2018-11-01",
        "",
    ]
    assert float(row[1]) == 1e-7
    as_json = warehouse.cli("query", "--sql", EXACT_SQL, "--json")
    [values] = json.loads(as_json.stdout, parse_float=Decimal)
    assert values == {
        "big": Decimal("1234567.891"),
        "tiny": Decimal("1e-7"),
        "tenth": Decimal("0.1"),
        "exact": Decimal("12345678901234567890.123456789"),
        "at": "2018-11-01T10:00:00.123000+00:00",
        "day": "2018-11-01",
        "nothing": None,
    }


def test_tables_round_for_people_but_never_hide_a_small_number() -> None:
    assert format_cell(1234567.891) == "1,234,567.891"
    assert format_cell(1e-7) == "1e-07"
    assert format_cell(0.0) == "0"

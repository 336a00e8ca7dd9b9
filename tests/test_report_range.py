"""The report over a range of days: the grain of its charts follows the range (a day to years),
``--since``/``--until`` choose the days, and rejects are summarised with the detail folded."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from browser import ARTIFACTS, LAPTOP, Chromium
from conftest import Warehouse, run_cli
from datasets import play, song, write_day, write_song

from sparkify.generator import GenerateOptions, generate
from sparkify.report import choose_grain
from sparkify.report_sections import reason_kind

FIRST_DAY = dt.date(2016, 1, 4)  # a Monday
LAST_DAY = dt.date(2018, 12, 31)


def _ms(day: dt.date, hour: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def years(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A DuckDB warehouse of three years of plays, one day in ten from 2016-01-04 to
    2018-12-31; listener 7 changes level every 100 days. Its CLI arguments."""
    root = tmp_path_factory.mktemp("years")
    write_song(root, song("SOA", "A", "B", 200.0))
    for n in range(0, (LAST_DAY - FIRST_DAY).days + 1, 10):
        day = FIRST_DAY + dt.timedelta(days=n)
        level = "paid" if n // 100 % 2 else "free"
        write_day(
            root,
            [
                play(_ms(day, 12), 7, 10_000 + n, 0, level=level, song="A", artist="B"),
                play(_ms(day, 13), 8, 20_000 + n, 0, song="C", artist="D"),
                play(_ms(day, 13) + 60_000, 8, 20_000 + n, 1, song="E", artist="F"),
            ],
        )
    database = ["--backend", "duckdb", "--database", str(root / "w.duckdb")]
    result = run_cli("etl", *database, "--songs", str(root / "song_data"), "--logs",
                     str(root / "log_data"), "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return database


def report_json(database: list[str], out: Path, *args: str) -> dict:
    result = run_cli("report", *database, "--out", str(out), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def bars(html: str, chart: str) -> list[str]:
    """The hover titles of a chart's marks, one per bar."""
    figure = html[html.index(f'id="chart-{chart}"') :]
    figure = figure[: figure.index("</figure>")]
    return re.findall(r'<g class="tip"><title>([^<]*)</title>', figure)


def test_grain_is_chosen_from_the_length_of_the_range() -> None:
    day = dt.date(2018, 11, 1)
    assert choose_grain(day, day) == "day"
    assert choose_grain(None, None) == "day"
    assert choose_grain(day, day + dt.timedelta(days=91)) == "day"  # 92 days
    assert choose_grain(day, day + dt.timedelta(days=92)) == "week"
    assert choose_grain(day, day + dt.timedelta(days=731)) == "week"  # 732 days
    assert choose_grain(day, day + dt.timedelta(days=732)) == "month"


def test_three_years_are_drawn_per_month_and_one_year_per_week(
    years: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "all.html"
    answer = report_json(years, out)
    assert answer["grain"] == "month"
    months = bars(out.read_text("utf-8"), "plays_per_period")
    assert len(months) == 36  # Jan 2016 .. Dec 2018, not 1,092 daily bars
    assert months[0].startswith("Jan 2016: ") and months[-1].startswith("Dec 2018: ")
    changes = bars(out.read_text("utf-8"), "level_changes_per_period")
    assert len(changes) == 36 and any(" 1 upgrades" in t or "1 upgrades" in t for t in changes)

    out = tmp_path / "2018.html"
    answer = report_json(years, out, "--since", "2018-01-01", "--until", "2018-12-31")
    assert (answer["since"], answer["until"], answer["grain"]) == (
        "2018-01-01",
        "2018-12-31",
        "week",
    )
    weeks = bars(out.read_text("utf-8"), "plays_per_period")
    expected = run_cli("query", "plays_per_period", *years, "--grain", "week", "--since",
                       "2018-01-01", "--until", "2018-12-31", "--json")  # fmt: skip
    rows = json.loads(expected.stdout)
    assert len(weeks) == len(rows) and 30 <= len(rows) <= 53
    first = dt.date.fromisoformat(rows[0]["period"])
    assert weeks[0] == f"week of {first.day} {first:%b %Y}: {rows[0]['plays']} plays, " + (
        f"{rows[0]['listeners']} listeners"
    )
    html = out.read_text("utf-8")
    assert (
        "sparkify query plays_per_period --grain week --since 2018-01-01 --until 2018-12-31" in html
    )


def test_a_month_is_drawn_per_day_and_the_range_limits_every_figure(
    years: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "nov.html"
    answer = report_json(years, out, "--since", "2018-11-01", "--until", "2018-11-30")
    assert answer["grain"] == "day"
    html = out.read_text("utf-8")
    days = bars(html, "plays_per_period")
    played = [FIRST_DAY + dt.timedelta(days=n) for n in range(0, 1100, 10)]
    november = [d for d in played if (d.year, d.month) == (2018, 11)]
    assert [d.split(":")[0] for d in days] == [f"{d:%a} {d.day} {d:%b %Y}" for d in november]
    assert len(november) == 3
    assert '<div class="value">9</div>' in html  # 3 plays on each of the 3 days
    assert "2018-11-01 to 2018-11-30, per day" in html


def test_report_dates_are_checked_one_error_line_exit_2(years: list[str], tmp_path: Path) -> None:
    cases = {
        (
            "--since",
            "2018-11-31",
        ): "error: --since must be a date like 2018-11-01, got '2018-11-31'\n",
        (
            "--until",
            "yesterday",
        ): "error: --until must be a date like 2018-11-01, got 'yesterday'\n",
        ("--since", "2018-12-01", "--until", "2018-11-01"): (
            "error: --since 2018-12-01 is after --until 2018-11-01\n"
        ),
    }
    for args, error in cases.items():
        result = run_cli("report", *years, "--out", str(tmp_path / "r.html"), *args)
        assert (result.exit_code, result.stderr) == (2, error), args
    assert not (tmp_path / "r.html").exists()


def test_write_report_takes_the_range_too(years: list[str], tmp_path: Path) -> None:
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.report import write_report

    overrides = {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): years[-1]}
    settings = load_settings(overrides=overrides, environ={}, cwd=Path("/nonexistent"))
    with open_backend(settings) as backend:
        path = write_report(
            backend, tmp_path / "r.html", since=dt.date(2018, 11, 1), until=dt.date(2018, 11, 30)
        )
    assert len(bars(path.read_text("utf-8"), "plays_per_period")) == 3


def test_long_range_chart_hovers_in_chromium(
    chromium: Chromium, years: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "years.html"
    report_json(years, out)
    visit = chromium.visit(out.as_uri(), **LAPTOP)
    chromium.screenshot(visit, ARTIFACTS / "report-three-years-laptop.png")
    assert visit.errors == []
    hit = chromium.evaluate(
        visit,
        """(() => {
        const tip = document.querySelectorAll('#chart-level_changes_per_period .tip')[2];
        const hit = tip.querySelector('.hit'); hit.scrollIntoView({block: 'center'});
        const box = hit.getBoundingClientRect();
        return [box.left + box.width / 2, box.top + box.height / 2]; })()""",
    )
    chromium.hover(visit, *hit)
    shown = chromium.evaluate(
        visit,
        """[...document.querySelectorAll('#chart-level_changes_per_period .tip-text')]
        .filter(t => getComputedStyle(t).visibility === 'visible').map(t => t.textContent)""",
    )
    assert shown == ["Mar 2016: 0 upgrades, 0 downgrades"]


# -- rejects --------------------------------------------------------------------------------


def test_reason_kind_folds_numbers_and_quoted_values() -> None:
    assert reason_kind("invalid UTF-8 at byte 205") == "invalid UTF-8 at byte N"
    assert reason_kind("field 'ts': expected an integer, got 'yesterday'") == (
        "field 'ts': expected an integer, got '…'"
    )
    assert reason_kind("field 'status': expected an integer, got object") == (
        "field 'status': expected an integer, got object"
    )
    assert reason_kind("missing required field 'ts'") == "missing required field 'ts'"


def test_rejects_are_summarised_by_reason_and_the_files_folded(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    generate(data, GenerateOptions(users=30, days=20, songs=60, seed=5, bad_records=0.03))
    args = ("--songs", str(data / "song_data"), "--logs", str(data / "log_data"), "-q")
    assert warehouse.cli("etl", *args, "--max-errors", "100000").exit_code == 0
    out = tmp_path / "r.html"
    assert warehouse.cli("report", "--out", str(out), "-q").exit_code == 0
    html = out.read_text("utf-8")
    card = html[html.index('id="table-rejects_by_reason"') :]
    card = card[: card.index("</details>")]
    summary, folded = card.split('<details class="detail"')
    reasons = json.loads(warehouse.cli("query", "rejects_by_reason", "--json").stdout)
    kinds = re.findall(r"<tr>\s*<td>", summary)
    assert 3 <= len(kinds) <= 12 < len(reasons)  # a few kinds, not one row per exact reason
    assert "<details" not in summary and " open" not in folded[:40]  # folded: closed
    assert folded.count("<tr>") > len(kinds)  # the per-file rows are there, inside
    total = sum(r["rejected"] for r in reasons)
    assert f"{total:,} records rejected" in html[: html.index('<section class="cards"')]

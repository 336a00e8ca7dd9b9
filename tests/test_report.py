"""``sparkify report``: one self-contained HTML file, checked as text and in headless Chromium
(``browser.py``). The browser tests write screenshots at laptop and phone widths to
``test-artifacts/`` at the repository root, for review.
"""

from __future__ import annotations

import json
import re
import stat
import webbrowser
from pathlib import Path

import pytest
from browser import ARTIFACTS, LAPTOP, PHONE, Chromium
from conftest import Warehouse, run_cli
from datasets import DAY_MS, NOV_1, play, song, write_day, write_song

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_ARTIFACT = "<img src=x onerror=alert(2)>"
CHARTS = (
    "plays_per_period",
    "free_vs_paid_per_period",
    "plays_by_hour",
    "weekday_hour",
    "top_songs",
    "top_artists",
    "song_match_rate",
    "level_changes_per_period",
    "session_lengths",
)
INSIGHTS = (  # the charts of the questions over every event (issue #18)
    "active_users",
    "new_vs_returning",
    "retention",
    "session_stats",
    "song_feedback",
    "devices",
    "conversion",
    "churn",
)
SECTIONS = ["activity", "users", "catalogue", "feedback", "listeners", "subscriptions", "health"]
TABLES = (
    "most_active_users",
    "free_vs_paid",
    "recent_runs",
    "files_loaded",
    "rejects_by_reason",
    "rejects_by_file",
)


# -- a hostile dataset: markup in titles, artist names and a rejected record ----------------


def write_hostile_data(root: Path) -> tuple[Path, Path]:
    """Two songs with markup in their names, played often enough to top the charts, by a
    listener with markup in their name; and a rejected record with markup in its reason."""
    catalogue = [
        song("SOHOSTILE1", HOSTILE_TITLE, "Eve", 200.0),
        song("SOHOSTILE2", "Money $$$ & <b>bold</b>", HOSTILE_ARTIFACT, 200.0),
    ]
    for record in catalogue:
        write_song(root, record)
    start = NOV_1 + 4 * DAY_MS + 20 * 3_600_000  # 2018-11-05 20:00 UTC
    listener = {"level": "paid", "firstName": "<b>Mallory</b>", "length": 200.0}
    events = [
        play(start + 60_000 * i, 9001, 8800001, i, song=r["title"], artist=r["artist_name"])
        | listener
        for i, r in enumerate(catalogue * 25)
    ]
    events.append(events[0] | {"itemInSession": 60, "sessionId": HOSTILE_TITLE})
    write_day(root, events)
    return root / "song_data", root / "log_data"


def load(warehouse: Warehouse, generated: Path, hostile_root: Path) -> None:
    result = warehouse.cli(
        "etl", "--songs", str(generated / "song_data"), "--logs", str(generated / "log_data"), "-q"
    )
    assert result.exit_code == 0, result.output
    songs, logs = write_hostile_data(hostile_root)
    result = warehouse.cli("etl", "--songs", str(songs), "--logs", str(logs), "-q")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, generated: Path) -> Path:
    """The report of the generated dataset plus the hostile one, on DuckDB."""
    root = tmp_path_factory.mktemp("report")
    database = str(root / "w.duckdb")
    warehouse = Warehouse("duckdb", ["--backend", "duckdb", "--database", database])
    load(warehouse, generated, root / "hostile")
    out = root / "report.html"
    result = warehouse.cli("report", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    return out


# -- the file itself ------------------------------------------------------------------------


def test_report_builds_on_every_backend_and_prints_path_and_sections_as_json(
    warehouse: Warehouse, generated: Path, tmp_path: Path
) -> None:
    load(warehouse, generated, tmp_path / "hostile")
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    result = warehouse.cli("report", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["path"] == str(out.resolve())
    assert [s["id"] for s in answer["sections"]] == SECTIONS
    assert sorted(c for s in answer["sections"] for c in s["charts"]) == sorted(CHARTS + INSIGHTS)
    queries = {q for s in answer["sections"] for q in s["queries"]}
    assert queries >= set(INSIGHTS)  # each drawn from the named query of that name
    assert {t for s in answer["sections"] for t in s["tables"]} >= set(TABLES)
    html = out.read_text("utf-8")
    assert html.count("<svg ") == len(CHARTS + INSIGHTS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(html) < 1_000_000


def header(html: str) -> str:
    """The masthead and what comes before the headline figures."""
    return html[html.index("<header") : html.index('<section class="cards"')]


def test_header_of_a_load_with_rejects_warns_instead_of_only_all_passed(
    report_file: Path,
) -> None:
    top = header(report_file.read_text("utf-8"))
    assert 'class="banner' in top  # a warning banner, not only a green badge
    assert re.search(r"1 record rejected \(0\.\d+% of [\d,]+ lines read\)", top), top
    assert re.search(r"Rejected records</dt><dd><span class=\"badge warn\">1</span>", top), top


def test_report_escapes_markup_from_the_data(report_file: Path) -> None:
    html = report_file.read_text("utf-8")
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<b>" not in html
    # in the SVG labels (matplotlib escapes), in table cells and in reject reasons
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "Money $$$ &amp; &lt;b&gt;bold&lt;/b&gt;" in html  # "$" is not mathtext


def test_report_refers_to_nothing_outside_the_file(report_file: Path) -> None:
    html = report_file.read_text("utf-8")
    assert "Content-Security-Policy" in html
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html):
        assert attribute.startswith("#") or attribute == "data:,", attribute
    assert "@import" not in html and "url(http" not in html and "@font-face" not in html
    assert "<image" not in html  # no raster images embedded in the charts


def test_ids_are_unique_across_the_inlined_charts(report_file: Path) -> None:
    html = report_file.read_text("utf-8")
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    references = set(re.findall(r'(?:url\(#|href="#)([^")]+)', html))
    assert references and references <= set(ids)  # clip paths, tick marks, section links


def test_report_on_an_empty_warehouse_says_there_is_no_data(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    assert warehouse.cli("create-tables", "-q").exit_code == 0
    out = tmp_path / "report.html"
    result = warehouse.cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    charts = len(CHARTS + INSIGHTS)
    assert result.stdout.startswith(f"wrote {out} (7 sections, {charts} charts) from ")
    html = out.read_text("utf-8")
    assert "No plays loaded yet" in html
    assert html.count("No data loaded yet") == charts - 4  # and three more messages:
    assert "No upgrades or downgrades in this period" in html
    assert "No subscription changes in this period" in html
    assert "No thumbs up or down in this period" in html
    assert "No free users in this period" in html


def test_report_without_tables_exits_2_and_says_to_load_first(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    result = warehouse.cli("report", "--out", str(tmp_path / "report.html"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "load data first (sparkify etl --songs PATH --logs PATH)" in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_report_open_opens_the_file_in_the_default_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *args, **kwargs: opened.append(url))
    duckdb = ["--backend", "duckdb", "--database", str(tmp_path / "w.duckdb")]
    assert run_cli("create-tables", *duckdb, "-q").exit_code == 0
    out = tmp_path / "report.html"
    result = run_cli("report", *duckdb, "--out", str(out), "--open", "-q")
    assert result.exit_code == 0, result.output
    assert opened == [out.resolve().as_uri()]


def test_write_report_is_the_library_entry_point(tmp_path: Path) -> None:
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.report import write_report

    database = str(tmp_path / "w.duckdb")
    assert run_cli("create-tables", "--backend", "duckdb", "--database", database).exit_code == 0
    overrides = {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): database}
    settings = load_settings(overrides=overrides, environ={}, cwd=Path("/nonexistent"))
    with open_backend(settings) as backend:
        (tmp_path / "out").mkdir()
        path = write_report(backend, tmp_path / "out" / "r.html", limit=3)
    assert path == tmp_path / "out" / "r.html"
    assert path.read_text("utf-8").startswith("<!doctype html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]  # no temporary file left
    plain = tmp_path / "plain.txt"
    plain.write_text("")  # the mode any new file gets here: the report is no more private
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# -- in a real browser ----------------------------------------------------------------------


CHART_SIZES = """Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();
  return [f.dataset.chart, {width: box.width, height: box.height,
    viewBox: svg.getAttribute('viewBox'), shapes: svg.querySelectorAll('path, use').length,
    text: svg.textContent, left: Math.round(f.getBoundingClientRect().left)}];
}))"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_report_opens_in_chromium_without_errors_or_requests(
    chromium: Chromium, report_file: Path, viewport: dict, request: pytest.FixtureRequest
) -> None:
    url = report_file.as_uri()
    visit = chromium.visit(url, **viewport)
    name = f"report-{request.node.callspec.id}.png"
    shot = chromium.screenshot(visit, ARTIFACTS / name)
    print(f"screenshot: {shot}")
    assert visit.errors == []
    assert visit.dialogs == []
    assert visit.requests == [url]  # the file itself, nothing else
    assert chromium.evaluate(visit, "document.scripts.length") == 0
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    assert chromium.evaluate(visit, overflow) <= 0  # no sideways scrolling


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_chart_is_drawn_and_scales_to_the_viewport(
    chromium: Chromium, report_file: Path, viewport: dict
) -> None:
    visit = chromium.visit(report_file.as_uri(), **viewport)
    charts = chromium.evaluate(visit, CHART_SIZES)
    assert sorted(charts) == sorted(CHARTS + INSIGHTS)
    for name, chart in charts.items():
        assert chart["viewBox"], name
        assert 250 <= chart["width"] <= viewport["width"], (name, chart["width"])
        assert chart["height"] > 120, name
        assert chart["shapes"] > 10, name  # bars, ticks, cells: not an empty frame
    columns = {chart["left"] for chart in charts.values()}
    assert len(columns) == (2 if viewport is LAPTOP else 1)  # the grid collapses on phones


def test_hostile_titles_render_as_text_in_charts_and_tables(
    chromium: Chromium, report_file: Path
) -> None:
    visit = chromium.visit(report_file.as_uri(), **LAPTOP)
    charts = chromium.evaluate(visit, CHART_SIZES)
    assert HOSTILE_TITLE in charts["top_songs"]["text"]
    assert HOSTILE_ARTIFACT in charts["top_artists"]["text"]
    cells = chromium.evaluate(
        visit, "[...document.querySelectorAll('td')].map(td => td.textContent)"
    )
    assert HOSTILE_TITLE in cells
    assert HOSTILE_ARTIFACT in cells
    assert any(HOSTILE_TITLE[:20] in cell and "sessionId" in cell for cell in cells)  # reject
    assert chromium.evaluate(visit, "document.querySelectorAll('img, script, b').length") == 0
    assert visit.dialogs == []


# The middle mark of a chart scrolled into view: where it is, and its tip's text and title.
MARK = """(chart => {
  const tips = [...document.querySelectorAll(`#chart-${chart} .tip`)];
  const index = Math.floor(tips.length / 2), hit = tips[index].querySelector('.hit');
  hit.scrollIntoView({block: 'center'});
  const box = hit.getBoundingClientRect(), view = window.visualViewport;  // mouse: visual
  return {index, x: box.left + box.width / 2 - view.offsetLeft,
          y: box.top + box.height / 2 - view.offsetTop,
          title: tips[index].querySelector('title').textContent, count: tips.length};
})"""
SHOWN = """(chart => [...document.querySelectorAll(`#chart-${chart} .tip`)].map((tip, i) =>
  [i, getComputedStyle(tip.querySelector('.tip-text')).visibility,
   tip.querySelector('.tip-text').textContent]).filter(t => t[1] === 'visible'))"""
MARKED = """[...document.querySelectorAll('figure.chart')].filter(
  f => f.querySelector('.tip')).map(f => f.dataset.chart)"""
DATA_ROWS = """(chart => [...document.querySelectorAll(`#chart-${chart} tbody tr`)].map(
  tr => [...tr.querySelectorAll('td')].map(td => td.textContent)))"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_hovering_a_mark_of_every_chart_shows_its_value(
    chromium: Chromium, report_file: Path, viewport: dict
) -> None:
    visit = chromium.visit(report_file.as_uri(), **viewport)
    marked = chromium.evaluate(visit, MARKED)
    assert sorted(marked) == sorted(CHARTS + INSIGHTS)  # the generated data has every kind
    for chart in marked:
        assert chromium.evaluate(visit, f"{SHOWN}('{chart}')") == [], chart  # hidden at rest
        mark = chromium.evaluate(visit, f"{MARK}('{chart}')")
        chromium.hover(visit, mark["x"], mark["y"])
        [(index, _, text)] = chromium.evaluate(visit, f"{SHOWN}('{chart}')")
        assert index == mark["index"], chart  # only the tip of the mark under the pointer
        assert re.search(r"\b[\d,]+ [a-z]+", text), text  # a value: "3 plays", "7 up"...
        # the text is the title, or (too wide for the chart) its start: the value comes first
        assert text == mark["title"] or mark["title"].startswith(text.removesuffix("…")), text
    # the value is the data's: the middle bar of plays per day is that day's row
    mark = chromium.evaluate(visit, f"{MARK}('plays_per_period')")
    row = chromium.evaluate(visit, f"{DATA_ROWS}('plays_per_period')")[mark["index"]]
    assert mark["count"] == len(chromium.evaluate(visit, f"{DATA_ROWS}('plays_per_period')"))
    assert f": {row[1]} plays, {row[2]} listeners" in mark["title"], (row, mark)
    assert visit.errors == []

"""The HTML report: one self-contained file of charts and tables built from the warehouse.

Every number comes from a named query in ``sparkify.analytics`` (the ones ``sparkify query``
runs) or from ``sparkify.quality``, so the report and the CLI cannot disagree. Charts are drawn
by ``sparkify.charts`` as inline SVG and the page is a Jinja2 template with autoescaping, so
values from the data (song titles, file names, reject reasons) always render as text. Jinja2
and matplotlib come with the ``report`` extra and are imported only when a report is built.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify import analytics, charts, quality
from sparkify.backends import Backend, Result
from sparkify.errors import ConfigError, needs
from sparkify.pipeline import require_tables

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

DEFAULT_PATH = Path("report.html")
HEALTH_LIMIT = 50  # rows of the ledger tables (runs, rejects) shown in the report


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    query: str | None = None  # the named query behind it, if any
    note: str = ""
    wide: bool = False  # spans the whole grid row
    command: str = ""  # the command that prints the same rows, when not a named query

    @property
    def source(self) -> str:
        return self.command or (f"sparkify query {self.query}" if self.query else "")

    @property
    def numeric(self) -> list[bool]:
        """Per column: holds numbers (right-aligned), judged by every row, not the first."""
        return [
            any(_is_number(row[i]) for row in self.rows)
            and all(_is_number(row[i]) or row[i] is None for row in self.rows)
            for i in range(len(self.columns))
        ]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: Markup
    data: Table  # the numbers behind the chart, shown under it
    caption: str = ""


@dataclass(frozen=True)
class Note:
    id: str
    title: str
    paragraphs: list[str]


Block = Chart | Table | Note


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block]


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str = ""


@dataclass
class Report:
    warehouse: str
    generated_at: dt.datetime
    first_play: dt.datetime | None
    last_play: dt.datetime | None
    cards: list[Card]
    checks: quality.CheckResult
    sections: list[Section] = field(default_factory=list)
    path: Path | None = None  # where ``write`` put it

    @property
    def charts(self) -> list[Chart]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Chart)]

    def outline(self) -> list[dict[str, Any]]:
        """Sections with their charts, tables and the named queries behind them."""
        outline = []
        for section in self.sections:
            tables = [b for b in section.blocks if isinstance(b, Table)]
            queries = [b.data.query for b in section.blocks if isinstance(b, Chart)]
            queries += [t.query for t in tables]
            outline.append(
                {
                    "id": section.id,
                    "title": section.title,
                    "charts": [b.id for b in section.blocks if isinstance(b, Chart)],
                    "tables": [t.id for t in tables],
                    "queries": sorted({q for q in queries if q}),
                }
            )
        return outline

    def render(self) -> str:
        return _environment().get_template("report.html.j2").render(report=self)

    def write(self, path: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
        """Write the HTML atomically (a reader never sees half a file); return the path.
        The folder must exist: a mistyped path is an error, not a new folder."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(self.render(), encoding="utf-8")
            os.replace(temporary, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise ConfigError(
                    f"cannot write the report to {target}: {exc.strerror or exc}"
                ) from None
            raise
        self.path = target
        return target


def write_report(
    backend: Backend,
    path: str | os.PathLike[str] = DEFAULT_PATH,
    *,
    limit: int = analytics.DEFAULT_LIMIT,
) -> Path:
    """Build the report from a connected ``backend`` and write it to ``path``."""
    return build_report(backend, limit=limit).write(path)


def build_report(backend: Backend, *, limit: int = analytics.DEFAULT_LIMIT) -> Report:
    """Run the named queries and quality checks and lay out the report (not yet rendered)."""
    with needs("report", "the report"):  # fail before any query, not halfway through
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    require_tables(backend)
    results: dict[str, Result] = {}

    def run(name: str, rows: int = limit) -> Result:
        if name not in results:
            results[name] = analytics.run_query(backend, name, rows)
        return results[name]

    summary = run("summary").as_dicts()[0]
    matches = run("song_match_rate").as_dicts()[0]
    report = Report(
        warehouse=backend.describe(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        first_play=summary["first_play"],
        last_play=summary["last_play"],
        cards=_cards(summary, matches),
        checks=quality.run_checks(backend),
    )
    report.sections = [
        _activity(run),
        _catalogue(run, matches),
        _listeners(run),
        _health(run, report.checks),
    ]
    return report


# -- sections -------------------------------------------------------------------------------


def _cards(summary: dict[str, Any], matches: dict[str, Any]) -> list[Card]:
    return [
        Card("Plays", _number(summary["plays"]), "songs started (NextSong events)"),
        Card("Listeners", _number(summary["listeners"]), "users with at least one play"),
        Card("Songs", _number(summary["songs"]), "in the song catalogue"),
        Card("Artists", _number(summary["artists"]), "in the song catalogue"),
        Card("Paid share", _percent(summary["paid_pct"]), "of plays by paid subscribers"),
        Card("Matched plays", _percent(matches["matched_pct"]), "found in the catalogue"),
    ]


def _activity(run: Callable[..., Result]) -> Section:
    days = run("plays_per_day")
    return Section(
        "activity",
        "Listening activity",
        "When people listen: plays per day, the daily rhythm and the weekly pattern. "
        "All times are UTC, as recorded in the event logs.",
        [
            _chart("plays_per_day", "Plays per day", charts.plays_per_day, days),
            _chart(
                "free_vs_paid_per_day",
                "Free and paid plays per day",
                charts.free_vs_paid_per_day,
                days,
                "Plays are counted under the level the listener had when the song started.",
                query="plays_per_day",
            ),
            _chart(
                "plays_by_hour",
                "Plays by hour of day (UTC)",
                charts.plays_by_hour,
                run("plays_by_hour"),
            ),
            _chart(
                "weekday_hour",
                "Plays by weekday and hour (UTC)",
                charts.weekday_hour_heatmap,
                run("weekday_hour"),
                "Darker cells have fewer plays, brighter cells more.",
            ),
        ],
    )


def _catalogue(run: Callable[..., Result], matches: dict[str, Any]) -> Section:
    top_songs, top_artists, match = run("top_songs"), run("top_artists"), run("song_match_rate")
    height = max(2.4, 1.1 + 0.27 * max(len(top_songs.rows), len(top_artists.rows)))
    return Section(
        "catalogue",
        "Songs and artists",
        "Only plays whose title and artist match a song in the catalogue can be attributed "
        "to a song and an artist, so the rankings below count matched plays.",
        [
            _chart(
                "top_songs", _top(top_songs, "songs"), charts.top_songs, top_songs, height=height
            ),
            _chart(
                "top_artists",
                _top(top_artists, "artists"),
                charts.top_artists,
                top_artists,
                height=height,
            ),
            _chart(
                "song_match_rate",
                "Plays matched to the catalogue",
                charts.song_match_rate,
                match,
                height=2.2,
            ),
            Note("catalogue_coverage", "Why plays go unmatched", _coverage_text(matches)),
        ],
    )


def _top(result: Result, what: str) -> str:
    return f"Top {len(result.rows)} {what}" if result.rows else f"Top {what}"


def _listeners(run: Callable[..., Result]) -> Section:
    changes = run("level_changes")
    days = [row[0] for row in run("plays_per_day").rows]
    return Section(
        "listeners",
        "Listeners and subscriptions",
        "Who listens, how long a session lasts, and how listeners move between the free and "
        "the paid level (from the user_levels history).",
        [
            _chart(
                "level_changes",
                "Upgrades and downgrades per day",
                lambda fig, result: charts.level_changes(fig, result, days),
                changes,
                "An upgrade is a free -> paid change of level, a downgrade paid -> free.",
                empty="No upgrades or downgrades in this period",
            ),
            _chart(
                "session_lengths",
                "Songs per session",
                charts.session_lengths,
                run("session_lengths"),
            ),
            _table("most_active_users", "Most active listeners", run("most_active_users")),
            _table("free_vs_paid", "Plays by subscription level", run("free_vs_paid")),
        ],
    )


def _health(run: Callable[..., Result], checks: quality.CheckResult) -> Section:
    failing = checks.failed
    return Section(
        "health",
        "Data health",
        "Where the numbers come from: the last loads (with the fields of the raw data that "
        "no column holds, counted per run: unknown_fields), the raw files behind them, "
        "records that were rejected (and why), and the data-quality checks on the loaded "
        "tables.",
        [
            _table("recent_runs", "Last ETL runs", run("recent_runs", HEALTH_LIMIT), wide=True),
            _table("files_loaded", "Files loaded", run("files_loaded")),
            _rejects(run("rejects_by_file", HEALTH_LIMIT)),
            Table(
                "quality_checks",
                "Quality checks",
                ["check", "result", "severity", "failing rows", "what it verifies"],
                [(c.name, _verdict(c), c.severity, c.failing_rows, c.description) for c in checks],
                note=f"{len(checks) - len(failing)} of {len(checks)} checks without errors.",
                wide=True,
                command="sparkify check",
            ),
        ],
    )


def _verdict(check: quality.CheckOutcome) -> str:
    return "pass" if check.passed else "FAIL" if check.severity == quality.ERROR else "warn"


def _table(table_id: str, title: str, result: Result, wide: bool = False) -> Table:
    return Table(table_id, title, result.columns, result.rows, table_id, wide=wide)


def _rejects(result: Result) -> Table:
    """Rejected records per file; file names relative to the folder they share."""
    prefix = _shared_folder([str(row[0]) for row in result.rows])
    rows = [(str(row[0])[len(prefix) :], *row[1:]) for row in result.rows]
    note = f"Files under {prefix}" if prefix else ""
    if not rows:
        note = "No records were rejected."
    return Table(
        "rejects_by_file", "Rejected records", result.columns, rows, "rejects_by_file", note
    )


def _shared_folder(urls: list[str]) -> str:
    """The longest folder (ending in "/") that every URL is under."""
    shared: list[str] = []
    for parts in zip(*(url.split("/")[:-1] for url in urls), strict=False):
        if len(set(parts)) > 1:
            break
        shared.append(parts[0])
    return "/".join(shared) + "/" if shared else ""


def _coverage_text(matches: dict[str, Any]) -> list[str]:
    plays, matched = int(matches["plays"] or 0), int(matches["matched_plays"] or 0)
    catalogue, played = int(matches["catalogue_songs"]), int(matches["distinct_songs_played"])
    if not plays:
        return ["No plays are loaded yet."]
    text = [
        f"{_number(matched)} of {_number(plays)} plays ({_percent(matches['matched_pct'])}) "
        "name a song that is in the catalogue. A play is matched on title and artist name "
        "(case and surrounding spaces ignored)."
    ]
    if played > catalogue or matched < plays:
        text.append(
            f"Listeners played {_number(played)} different songs, while the catalogue holds "
            f"{_number(catalogue)}: the catalogue covers only part of what people play, so "
            "the unmatched plays are songs that were never loaded into it, not lost data. "
            "Loading more song files raises the match rate."
        )
    return text


# -- charts ---------------------------------------------------------------------------------


def _chart(
    chart_id: str,
    title: str,
    draw: charts.Draw,
    result: Result,
    caption: str = "",
    *,
    query: str | None = None,
    height: float = charts.DEFAULT_HEIGHT,
    empty: str = charts.NO_DATA,
) -> Chart:
    """One chart and the numbers behind it; ``query`` names the analytics query behind it."""
    svg = charts.draw_svg(chart_id, title, draw, result, height=height, empty=empty)
    data = Table(chart_id, title, result.columns, result.rows, query or chart_id)
    return Chart(chart_id, title, svg, data, caption)


# -- formatting -----------------------------------------------------------------------------


def _number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _percent(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f}%"


def _cell(value: Any, column: str = "") -> str:
    """A value as a table shows it; the template escapes the result."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value) if column.endswith(("_id", "_line")) else f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{float(value):,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _day(value: dt.date | None) -> str:
    return "—" if value is None else f"{value.day} {value:%b %Y}"


def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("sparkify", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cell=_cell, day=_day)
    env.tests["number"] = _is_number
    env.tests["datetime"] = lambda value: isinstance(value, dt.datetime)
    return env

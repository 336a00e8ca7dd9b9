"""The HTML report: one self-contained file of charts and tables built from the warehouse.

Every number comes from a named query in ``sparkify.analytics`` (the ones ``sparkify query``
runs, with the same options: the days asked for and the grain chosen from them) or from
``sparkify.quality``, so the report and the CLI cannot disagree. The header counts what is
off in the loads (rejected records, failing checks, unknown fields, failed runs) and shows a
warning banner when anything is. Charts are drawn by ``sparkify.charts`` as inline SVG, with
hover values in CSS, and the page is a Jinja2 template with autoescaping, so values from the
data (song titles, file names, reject reasons) always render as text. Jinja2 and matplotlib
come with the ``report`` extra and are imported only when a report is built.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify import analytics, charts, quality
from sparkify.api import DateLike, date_range
from sparkify.backends import Backend, Result
from sparkify.errors import ConfigError, needs
from sparkify.pipeline import require_tables

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

DEFAULT_PATH = Path("report.html")
HEALTH_LIMIT = 50  # rows of the ledger tables (runs, rejects) shown in the report
DAILY_UP_TO = 92  # days of data shown per day; up to WEEKLY_UP_TO per week, then per month
WEEKLY_UP_TO = 732


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    query: str | None = None  # the named query behind it, if any
    note: str = ""
    wide: bool = False  # spans the whole grid row
    command: str = ""  # the command that prints the same rows
    detail: Table | None = None  # the rows behind it, folded under it

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


@dataclass(frozen=True)
class Health:
    """What the header says about the loads: anything off shows in a warning banner."""

    lines_read: int
    rejected: int
    failed_runs: int
    failed_runs_rejected: int
    checks: quality.CheckResult
    unknown_fields: Counter[str]  # "kind.field": times seen, over every run

    @property
    def failing_checks(self) -> list[str]:
        return [c.name for c in self.checks.failed if c.severity == quality.ERROR]

    @property
    def warning_checks(self) -> list[str]:
        return [c.name for c in self.checks.failed if c.severity != quality.ERROR]

    @property
    def problems(self) -> list[str]:
        """One sentence per thing that is off, the gravest first; none when all is well."""
        found = []
        if self.failing_checks:
            found.append(
                f"{_plural(len(self.failing_checks), 'quality check')} failed: "
                + ", ".join(self.failing_checks)
            )
        if self.rejected:
            found.append(f"{_plural(self.rejected, 'record')} rejected ({self.rejected_share})")
        if self.failed_runs:
            found.append(
                f"{_plural(self.failed_runs, 'run')} failed and changed nothing (their "
                f"{_plural(self.failed_runs_rejected, 'rejected record')} are kept in "
                "etl_failed_rejects)"
            )
        if self.unknown_fields:
            fields = ", ".join(f"{name} ({n:,})" for name, n in self.unknown_fields.most_common(5))
            more = len(self.unknown_fields) - 5
            found.append(
                f"{_plural(len(self.unknown_fields), 'unknown field')} in the raw data, which no "
                f"column holds: {fields}" + (f" and {more} more" if more > 0 else "")
            )
        if self.warning_checks:
            found.append(
                f"{_plural(len(self.warning_checks), 'check')} with warnings: "
                + ", ".join(self.warning_checks)
            )
        return found

    @property
    def rejected_share(self) -> str:
        share = 100.0 * self.rejected / self.lines_read if self.lines_read else 0.0
        return f"{share:.{1 if share >= 0.1 else 2}f}% of {self.lines_read:,} lines read"


@dataclass
class Report:
    warehouse: str
    generated_at: dt.datetime
    first_play: dt.datetime | None
    last_play: dt.datetime | None
    cards: list[Card]
    health: Health
    since: dt.date | None = None  # the days asked for (inclusive; None: that end open)
    until: dt.date | None = None
    grain: str = analytics.DEFAULT_GRAIN  # of the charts over time, chosen from the days
    sections: list[Section] = field(default_factory=list)
    path: Path | None = None  # where ``write`` put it

    @property
    def checks(self) -> quality.CheckResult:
        return self.health.checks

    @property
    def charts(self) -> list[Chart]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Chart)]

    def outline(self) -> list[dict[str, Any]]:
        """Sections with their charts, tables (folded ones too) and the named queries behind
        them."""
        outline = []
        for section in self.sections:
            tables = [b for b in section.blocks if isinstance(b, Table)]
            tables += [t.detail for t in tables if t.detail]
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
    since: DateLike | None = None,
    until: DateLike | None = None,
) -> Path:
    """Build the report from a connected ``backend`` and write it to ``path``; ``since`` and
    ``until`` (dates or ``YYYY-MM-DD``, inclusive) restrict it to the plays of those days."""
    start, end = date_range(since, until)
    return build_report(backend, limit=limit, since=start, until=end).write(path)


def build_report(
    backend: Backend,
    *,
    limit: int = analytics.DEFAULT_LIMIT,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Report:
    """Run the named queries and quality checks and lay out the report (not yet rendered):
    the top-N tables have ``limit`` rows, the plays are those from ``since`` to ``until``
    (inclusive), and the grain of the charts over time is chosen from those days."""
    with needs("report", "the report"):  # fail before any query, not halfway through
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    require_tables(backend)
    run = _Answers(backend, limit, since, until)
    summary = run("summary").as_dicts()[0]
    first, last = summary["first_play"], summary["last_play"]
    run.grain = choose_grain(since or _date(first), until or _date(last))
    matches = run("song_match_rate").as_dicts()[0]
    report = Report(
        warehouse=backend.describe(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        first_play=first,
        last_play=last,
        cards=_cards(summary, matches),
        health=_health_summary(run, quality.run_checks(backend)),
        since=since,
        until=until,
        grain=run.grain,
    )
    report.sections = [
        _activity(run),
        _catalogue(run, matches),
        _listeners(run),
        _health(run, report.health),
    ]
    return report


@dataclass
class _Answers:
    """The report's named queries, each run once with the report's options (a ``limit`` of
    its own for some), and the command that prints the same rows."""

    backend: Backend
    limit: int
    since: dt.date | None
    until: dt.date | None
    grain: str = analytics.DEFAULT_GRAIN
    results: dict[tuple[str, int | None], Result] = field(default_factory=dict)

    def __call__(self, name: str, limit: int | None = None) -> Result:
        if (name, limit) not in self.results:
            self.results[name, limit] = analytics.run_query(
                self.backend,
                name,
                limit or self.limit,
                grain=self.grain,
                since=self.since,
                until=self.until,
            )
        return self.results[name, limit]

    def command(self, name: str, limit: int | None = None) -> str:
        query = analytics.get_query(name)
        words = ["sparkify query", name]
        if query.limited and (limit or self.limit) != analytics.DEFAULT_LIMIT:
            words.append(f"--limit {limit or self.limit}")
        if query.grained:
            words.append(f"--grain {self.grain}")
        if query.ranged:
            words += [
                f"--{end} {day}"
                for end, day in (("since", self.since), ("until", self.until))
                if day
            ]
        return " ".join(words)


def choose_grain(first: dt.date | None, last: dt.date | None) -> str:
    """Days for up to about three months of data, weeks for up to two years, then months: a
    chart never has more than about a hundred bars, from one day to many years."""
    days = (last - first).days + 1 if first and last else 1
    return "day" if days <= DAILY_UP_TO else "week" if days <= WEEKLY_UP_TO else "month"


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _health_summary(run: _Answers, checks: quality.CheckResult) -> Health:
    loads = run("load_health").as_dicts()[0]
    unknown: Counter[str] = Counter()
    for _, text in run("unknown_fields").rows:  # per run: {kind: {field: count}}
        for kind, fields in json.loads(text).items():
            unknown.update({f"{kind}.{name}": int(n) for name, n in fields.items()})
    return Health(
        lines_read=int(loads["lines_read"] or 0),
        rejected=int(loads["rows_rejected"]),
        failed_runs=int(loads["failed_runs"]),
        failed_runs_rejected=int(loads["failed_runs_rejected"]),
        checks=checks,
        unknown_fields=unknown,
    )


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


def _activity(run: _Answers) -> Section:
    grain = run.grain
    periods = run("plays_per_period")
    return Section(
        "activity",
        "Listening activity",
        f"When people listen: plays per {grain}, the daily rhythm and the weekly pattern. "
        "All times are UTC, as recorded in the event logs.",
        [
            _chart(
                run,
                "plays_per_period",
                f"Plays per {grain}",
                lambda fig, result: charts.plays_per_period(fig, result, grain),
                periods,
                _grain_caption(grain),
            ),
            _chart(
                run,
                "free_vs_paid_per_period",
                f"Free and paid plays per {grain}",
                lambda fig, result: charts.free_vs_paid_per_period(fig, result, grain),
                periods,
                "Plays are counted under the level the listener had when the song started.",
                query="plays_per_period",
            ),
            _chart(
                run,
                "plays_by_hour",
                "Plays by hour of day (UTC)",
                charts.plays_by_hour,
                run("plays_by_hour"),
            ),
            _chart(
                run,
                "weekday_hour",
                "Plays by weekday and hour (UTC)",
                charts.weekday_hour_heatmap,
                run("weekday_hour"),
                "Darker cells have fewer plays, brighter cells more.",
            ),
        ],
    )


def _grain_caption(grain: str) -> str:
    span = {"day": "up to three months", "week": "up to two years", "month": "over two years"}
    first = {"day": "", "week": " (a bar starts on its Monday)", "month": ""}
    return f"One bar per {grain}{first[grain]}: the grain for {span[grain]} of data."


def _catalogue(run: _Answers, matches: dict[str, Any]) -> Section:
    top_songs, top_artists, match = run("top_songs"), run("top_artists"), run("song_match_rate")
    height = max(2.4, 1.1 + 0.27 * max(len(top_songs.rows), len(top_artists.rows)))
    return Section(
        "catalogue",
        "Songs and artists",
        "Only plays whose title and artist match a song in the catalogue can be attributed "
        "to a song and an artist, so the rankings below count matched plays.",
        [
            _chart(
                run,
                "top_songs",
                _top(top_songs, "songs"),
                charts.top_songs,
                top_songs,
                height=height,
            ),
            _chart(
                run,
                "top_artists",
                _top(top_artists, "artists"),
                charts.top_artists,
                top_artists,
                height=height,
            ),
            _chart(
                run,
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


def _listeners(run: _Answers) -> Section:
    grain = run.grain
    periods = [row[0] for row in run("plays_per_period").rows]
    return Section(
        "listeners",
        "Listeners and subscriptions",
        "Who listens, how long a session lasts, and how listeners move between the free and "
        "the paid level (from the user_levels history).",
        [
            _chart(
                run,
                "level_changes_per_period",
                f"Upgrades and downgrades per {grain}",
                lambda fig, result: charts.level_changes(fig, result, periods, grain),
                run("level_changes_per_period"),
                "An upgrade is a free -> paid change of level, a downgrade paid -> free.",
                empty="No upgrades or downgrades in this period",
            ),
            _chart(
                run,
                "session_lengths",
                "Songs per session",
                charts.session_lengths,
                run("session_lengths"),
            ),
            _table(run, "most_active_users", "Most active listeners"),
            _table(run, "free_vs_paid", "Plays by subscription level"),
        ],
    )


def _health(run: _Answers, health: Health) -> Section:
    checks = health.checks
    failing = checks.failed
    return Section(
        "health",
        "Data health",
        "Where the numbers come from, over every load (not only the chosen days): the last "
        "loads (with the fields of the raw data that no column holds, counted per run: "
        "unknown_fields), the raw files behind them, records that were rejected (and why), "
        "and the data-quality checks on the loaded tables.",
        [
            _table(run, "recent_runs", "Last ETL runs", HEALTH_LIMIT, wide=True),
            _table(run, "files_loaded", "Files loaded"),
            _rejects(run, HEALTH_LIMIT),
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


def _table(
    run: _Answers, table_id: str, title: str, limit: int | None = None, *, wide: bool = False
) -> Table:
    """The rows of named query ``table_id``."""
    result = run(table_id, limit)
    command = run.command(table_id, limit)
    return Table(table_id, title, result.columns, result.rows, table_id, wide=wide, command=command)


_VALUE = re.compile(r"""got (['"]).*\1$""")  # the offending value a reason quotes
_NUMBER = re.compile(r"(?<![\w-])\d+\b")  # byte offsets, columns, lines; not "UTF-8"


def reason_kind(reason: str) -> str:
    """A reject reason without its particulars: "invalid UTF-8 at byte N",
    "field 'ts': expected an integer, got '…'"."""
    return _NUMBER.sub("N", _VALUE.sub(r"got \1…\1", reason))


def _rejects(run: _Answers, limit: int) -> Table:
    """Rejected records by kind of reason, with the first ``limit`` rows per file and reason
    folded under it; file names relative to the folder they share."""
    by_reason, by_file = run("rejects_by_reason"), run("rejects_by_file", limit)
    kinds: Counter[str] = Counter()
    for reason, rejected, _ in by_reason.rows:
        kinds[reason_kind(reason)] += int(rejected)
    total = sum(kinds.values())
    rows = [(kind, n, round(100.0 * n / total, 1)) for kind, n in kinds.most_common()]
    prefix = _shared_folder([str(row[0]) for row in by_file.rows])
    detail = Table(
        "rejects_by_file",
        "Per file and reason",
        by_file.columns,
        [(str(row[0])[len(prefix) :], *row[1:]) for row in by_file.rows],
        "rejects_by_file",
        f"Files under {prefix}" if prefix else "",
        command=run.command("rejects_by_file", limit),
    )
    note = (
        f"{_plural(total, 'record')} rejected, by reason (numbers and quoted values folded "
        "together: each exact reason is in rejects_by_reason)."
        if rows
        else "No records were rejected."
    )
    return Table(
        "rejects_by_reason",
        "Rejected records",
        ["reason", "rejected", "share_pct"],
        rows,
        "rejects_by_reason",
        note,
        detail=detail if by_file.rows else None,
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
    run: _Answers,
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
    name = query or chart_id
    data = Table(chart_id, title, result.columns, result.rows, name, command=run.command(name))
    return Chart(chart_id, title, svg, data, caption)


# -- formatting -----------------------------------------------------------------------------


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


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

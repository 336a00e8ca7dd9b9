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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify import analytics, quality, report_sections
from sparkify.api import DateLike, date_range
from sparkify.backends import Backend
from sparkify.errors import ConfigError, needs
from sparkify.pipeline import require_tables
from sparkify.report_blocks import Card, Chart, Health, Section, Table, cell, is_number
from sparkify.report_sections import Answers

if TYPE_CHECKING:
    from jinja2 import Environment

DEFAULT_PATH = Path("report.html")
DAILY_UP_TO = 92  # days of data shown per day; up to WEEKLY_UP_TO per week, then per month
WEEKLY_UP_TO = 732


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
    run = Answers(backend, limit, since, until)
    summary = run("summary").as_dicts()[0]
    first, last = summary["first_play"], summary["last_play"]
    run.grain = choose_grain(since or _date(first), until or _date(last))
    matches = run("song_match_rate").as_dicts()[0]
    report = Report(
        warehouse=backend.describe(),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        first_play=first,
        last_play=last,
        cards=report_sections.cards(summary, matches),
        health=_health_summary(run, quality.run_checks(backend)),
        since=since,
        until=until,
        grain=run.grain,
    )
    report.sections = [
        report_sections.activity(run),
        report_sections.users(run),
        report_sections.catalogue(run, matches),
        report_sections.feedback(run),
        report_sections.listeners(run),
        report_sections.subscriptions(run),
        report_sections.health(run, report.health),
    ]
    return report


def choose_grain(first: dt.date | None, last: dt.date | None) -> str:
    """Days for up to about three months of data, weeks for up to two years, then months: a
    chart never has more than about a hundred bars, from one day to many years."""
    days = (last - first).days + 1 if first and last else 1
    return "day" if days <= DAILY_UP_TO else "week" if days <= WEEKLY_UP_TO else "month"


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _health_summary(run: Answers, checks: quality.CheckResult) -> Health:
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
    env.filters.update(cell=cell, day=_day)
    env.tests["number"] = is_number
    env.tests["datetime"] = lambda value: isinstance(value, dt.datetime)
    return env

"""``sparkify report``: the warehouse as one self-contained HTML page."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from sparkify import analytics
from sparkify.api import date_range
from sparkify.cli.common import WarehouseOptions, echo_json, echo_line, warehouse_options
from sparkify.report import DEFAULT_PATH


@click.command("report")
@warehouse_options
@click.option(
    "--out",
    default=str(DEFAULT_PATH),
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the HTML file.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=analytics.DEFAULT_LIMIT,
    show_default=True,
    help="Rows in the top songs, artists and listeners.",
)
@click.option("--since", metavar="DATE", help="Only plays on or after DATE (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Only plays on or before DATE (YYYY-MM-DD).")
@click.option("--open", "open_browser", is_flag=True, help="Open it in the default web browser.")
def report_command(
    options: WarehouseOptions,
    out: str,
    limit: int,
    since: str | None,
    until: str | None,
    open_browser: bool,
) -> None:
    """Write an HTML report: charts and tables from the warehouse, in one file.

    The file needs no network to open (charts are inline SVG) and every figure in it is a
    named query, so `sparkify query NAME` gives the same numbers. Charts over time count per
    day, week or month, chosen from the range of days shown.

    \b
    Examples:
      sparkify report --out report.html --open
      sparkify report --since 2018-11-01 --until 2018-11-30
      sparkify report --backend postgres --dsn postgresql://localhost/sparkify --json
    """
    start, end = date_range(since, until, ("--since", "--until"))
    report = options.warehouse().report(out, limit=limit, since=start, until=end)
    path = report.path or Path(out)
    if options.json:
        echo_json(
            {
                "path": str(path.resolve()),
                "since": report.since,
                "until": report.until,
                "grain": report.grain,
                "problems": report.health.problems,
                "sections": report.outline(),
            }
        )
    elif not options.quiet:
        echo_line(
            f"wrote {path} ({len(report.sections)} sections, {len(report.charts)} charts) "
            f"from {report.warehouse}"
        )
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


COMMANDS = (report_command,)

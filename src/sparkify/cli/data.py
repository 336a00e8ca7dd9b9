"""``sparkify generate`` and ``sparkify demo``."""

from __future__ import annotations

from pathlib import Path

import click

from sparkify import analytics
from sparkify.api import Warehouse, generate, parse_date
from sparkify.cli.common import (
    WarehouseOptions,
    echo_json,
    echo_line,
    info,
    json_option,
    print_table,
    warehouse_options,
)
from sparkify.errors import MissingExtra
from sparkify.progress import progress_factory
from sparkify.report import DEFAULT_PATH

DEMO_SAMPLE = Path("sample")
DEMO_QUERIES = ("top_songs", "plays_by_hour", "free_vs_paid", "most_active_users")


@click.command("generate")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--users", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option(
    "--songs",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Song files written to song_data.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--start", metavar="DATE", default="2018-11-01", show_default=True, help="First day of events."
)
@click.option(
    "--match-rate",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of plays whose song is in song_data.",
)
@click.option(
    "--bad-records",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of event lines with injected faults (for testing).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 8),
    help="Processes that simulate the events (the files are the same whatever the number)"
    "  [default: one per idle core for large datasets]",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def generate_command(
    out: str,
    users: int,
    days: int,
    songs: int,
    seed: int,
    start: str,
    match_rate: float,
    bad_records: float,
    workers: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Write a synthetic dataset in the public song_data/log_data layout.

    The same options and seed always give byte-identical files.

    \b
    Example:
      sparkify generate --out data --users 1000 --days 30 --bad-records 0.01
    """
    summary = generate(
        out,
        users=users,
        days=days,
        songs=songs,
        seed=seed,
        start=parse_date(start, "--start") or start,
        match_rate=match_rate,
        bad_records=bad_records,
        progress=progress_factory(quiet or as_json),
        workers=workers,
    )
    if as_json:
        echo_json(summary.as_dict())
    elif not quiet:
        faults = sum(summary.bad_records.values())
        echo_line(
            f"wrote {summary.events:,} events ({summary.plays:,} plays) in "
            f"{summary.event_files} day files and {summary.song_files:,} song files to {out} "
            f"in {summary.seconds:.2f} s"
            + (f"; injected {faults} bad records: {summary.bad_records}" if faults else "")
        )


@click.command("demo")
@warehouse_options
@click.option(
    "--sample",
    default=str(DEMO_SAMPLE),
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the generated sample lives.",
)
def demo_command(options: WarehouseOptions, sample: str) -> None:
    """Generate a sample (if absent), load it, check it, show a few answers, write report.html.

    \b
    Example:
      sparkify demo            # into ./sparkify.duckdb, no server needed
    """
    sample_dir = Path(sample)
    if not (sample_dir / "log_data").exists():
        info(options, f"generating a sample dataset in {sample_dir} ...")
        generate(sample_dir, progress=progress_factory(options.quiet or options.json))
    with options.warehouse() as warehouse:
        run = warehouse.etl(
            sample_dir / "song_data",
            sample_dir / "log_data",
            checks=False,
            progress=options.progress,
        )
        checks = warehouse.check()
        answers = {name: warehouse.query(name, limit=5) for name in DEMO_QUERIES}
        report_path = _demo_report(options, warehouse)
    if options.json:
        echo_json(
            {
                "etl": run.as_dict(),
                "checks": checks.as_list(),
                "answers": answers,
                "report": str(report_path.resolve()) if report_path else None,
            }
        )
    else:
        echo_line(
            f"loaded {run.tables.get('songplays', 0):,} songplays into "
            f"{warehouse.describe()} ({run.files_new} new files, "
            f"{run.files_skipped} unchanged) in {run.seconds:.2f} s; "
            f"{checks.summary()}"
        )
        for name, rows in answers.items():
            print_table(rows.columns, rows.tuples(), analytics.get_query(name).question)
        if report_path:
            echo_line(f"report: {report_path.resolve()}")
    checks.raise_on_failure()


def _demo_report(options: WarehouseOptions, warehouse: Warehouse) -> Path | None:
    """report.html, or None (said on stderr) when the ``report`` extra is not installed:
    the demo shows the light install working too."""
    try:
        return warehouse.report(DEFAULT_PATH).path or DEFAULT_PATH
    except MissingExtra as missing:
        info(options, f"no report.html: {missing}")
        return None


COMMANDS = (generate_command, demo_command)

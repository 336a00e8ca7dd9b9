"""``sparkify generate`` and ``sparkify demo``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from sparkify import analytics, quality
from sparkify.backends import Backend
from sparkify.cli.common import (
    WarehouseOptions,
    connected,
    echo_json,
    echo_line,
    info,
    json_option,
    print_table,
    warehouse_options,
)
from sparkify.config import Settings
from sparkify.errors import ConfigError, MissingExtra
from sparkify.generator import GenerateOptions, GenerateSummary, generate
from sparkify.pipeline import EtlOptions, run_etl
from sparkify.progress import progress_factory
from sparkify.report import DEFAULT_PATH, write_report

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
    quiet: bool,
    as_json: bool,
) -> None:
    """Write a synthetic dataset in the public song_data/log_data layout.

    The same options and seed always give byte-identical files.

    \b
    Example:
      sparkify generate --out data --users 1000 --days 30 --bad-records 0.01
    """
    try:
        start_day = dt.date.fromisoformat(start)
    except ValueError:
        raise ConfigError(f"--start must be a date like 2018-11-01, got {start!r}") from None
    gen_options = GenerateOptions(
        users=users,
        days=days,
        songs=songs,
        seed=seed,
        start=start_day,
        match_rate=match_rate,
        bad_records=bad_records,
    )
    summary = _generate(Path(out), gen_options, quiet or as_json)
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


def _generate(out: Path, options: GenerateOptions, quiet: bool) -> GenerateSummary:
    with progress_factory(quiet)("Generating days", total=options.days) as advance:
        return generate(out, options, progress=lambda done, total: advance(1))


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
        _generate(sample_dir, GenerateOptions(), options.quiet or options.json)
    settings: Settings = options.settings(
        s3__song_data=str(sample_dir / "song_data"), s3__log_data=str(sample_dir / "log_data")
    )
    backend = options.backend_for(settings)
    etl_options = EtlOptions(
        songs=settings.require("S3", "SONG_DATA", "song files"),
        logs=settings.require("S3", "LOG_DATA", "event logs"),
        settings=settings,
    )
    with connected(backend):
        summary = run_etl(backend, etl_options, options.progress)
        checks = quality.run_checks(backend)
        answers = {name: analytics.run_query(backend, name, 5) for name in DEMO_QUERIES}
        report_path = _demo_report(options, backend)
    if options.json:
        echo_json(
            {
                "etl": summary.as_dict(),
                "checks": checks.as_list(),
                "answers": {name: result.as_dicts() for name, result in answers.items()},
                "report": str(report_path.resolve()) if report_path else None,
            }
        )
    else:
        echo_line(
            f"loaded {summary.tables.get('songplays', 0):,} songplays into "
            f"{backend.describe()} ({summary.files_new} new files, "
            f"{summary.files_skipped} unchanged) in {summary.seconds:.2f} s; "
            f"{checks.summary()}"
        )
        for name, result in answers.items():
            print_table(result.columns, result.rows, analytics.get_query(name).question)
        if report_path:
            echo_line(f"report: {report_path.resolve()}")
    checks.raise_on_failure()


def _demo_report(options: WarehouseOptions, backend: Backend) -> Path | None:
    """report.html, or None (said on stderr) when the ``report`` extra is not installed:
    the demo shows the light install working too."""
    try:
        return write_report(backend, DEFAULT_PATH)
    except MissingExtra as missing:
        info(options, f"no report.html: {missing}")
        return None


COMMANDS = (generate_command, demo_command)

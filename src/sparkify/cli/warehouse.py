"""Warehouse commands: create-tables, etl, check, rejects, query, sql."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from sparkify import analytics, quality
from sparkify.api import date_range
from sparkify.backends import backend_class
from sparkify.cli.common import (
    WarehouseOptions,
    echo_json,
    echo_line,
    info,
    print_table,
    warehouse_options,
    write_csv,
)
from sparkify.cli.watch import DEFAULT_INTERVAL, watch_etl
from sparkify.errors import ConfigError, QualityCheckFailed
from sparkify.pipeline import DEFAULT_MAX_ERRORS
from sparkify.plan import dry_run_text
from sparkify.results import Rows, RunResult

wait_option = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="Wait this long for another run to finish instead of failing at once.",
)


@click.command("create-tables")
@warehouse_options
@click.option("--drop", is_flag=True, help="Drop and recreate every table (loses all data).")
@wait_option
def create_tables_command(options: WarehouseOptions, drop: bool, wait: float) -> None:
    """Create the staging, star and bookkeeping tables (idempotent).

    \b
    Example:
      sparkify create-tables --database sparkify.duckdb
    """
    warehouse = options.warehouse()
    tables = warehouse.create_tables(drop=drop, wait=wait)
    where = warehouse.describe()
    if options.json:
        echo_json({"warehouse": where, "tables": tables, "dropped": drop})
    else:
        info(options, f"{'recreated' if drop else 'ready'}: {len(tables)} tables in {where}")


@click.command("etl")
@warehouse_options
@click.option("--songs", metavar="PATH_OR_URL", help="Song files ([S3] SONG_DATA).")
@click.option("--logs", metavar="PATH_OR_URL", help="Event logs ([S3] LOG_DATA).")
@click.option("--full-refresh", is_flag=True, help="Forget what was loaded; rebuild from source.")
@click.option(
    "--prune",
    is_flag=True,
    help="Remove the rows of files that are no longer in the input (staging, rejects, "
    "ledger; star tables rebuilt). Without it they are only reported.",
)
@click.option("--since", metavar="DATE", help="Only event files dated on or after DATE.")
@click.option("--until", metavar="DATE", help="Only event files dated on or before DATE.")
@click.option(
    "--max-errors",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_ERRORS,
    show_default=True,
    help="Abort (exit 3, rolled back) when more records than this are rejected.",
)
@click.option("--no-checks", is_flag=True, help="Skip the data-quality checks after loading.")
@wait_option
@click.option(
    "--watch",
    is_flag=True,
    help="Keep loading new files, one run per --interval, until SIGINT/SIGTERM.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help=f"Seconds from the start of one --watch run to the next [default: {DEFAULT_INTERVAL:g}].",
)
def etl_command(
    options: WarehouseOptions,
    songs: str | None,
    logs: str | None,
    full_refresh: bool,
    prune: bool,
    since: str | None,
    until: str | None,
    max_errors: int,
    no_checks: bool,
    wait: float,
    watch: bool,
    interval: float | None,
) -> None:
    """Stage new and changed raw files and update the star schema.

    Files already loaded and unchanged are skipped without being read. Bad records are
    quarantined in etl_rejects (see `sparkify rejects`). With --watch, a run starts every
    --interval seconds and prints one line (one JSON object with --json); SIGINT or SIGTERM
    stops after the current run (exit 0), a second one interrupts it (rolled back, exit 130).

    \b
    Examples:
      sparkify etl --songs sample/song_data --logs sample/log_data
      sparkify etl --logs s3://bucket/log_data --since 2018-11-01 --until 2018-11-15
      sparkify etl --logs s3://bucket/log_data --watch --interval 300 --json
    """
    if interval is not None and not watch:
        raise ConfigError("--interval applies to --watch")
    if watch and full_refresh:
        raise ConfigError(
            "--full-refresh cannot be combined with --watch: every run would rebuild everything"
        )
    warehouse = options.warehouse()
    start, end = date_range(since, until, ("--since", "--until"))
    load: dict[str, Any] = {
        "full_refresh": full_refresh,
        "prune": prune,
        "since": start,
        "until": end,
        "max_errors": max_errors,
        "wait": wait,
    }
    if watch:
        etl_options = warehouse.etl_options(songs, logs, **load)
        watch_etl(options, etl_options, not no_checks, interval or DEFAULT_INTERVAL)
        return
    try:
        run = warehouse.etl(songs, logs, checks=not no_checks, progress=options.progress, **load)
    except QualityCheckFailed as failed:  # committed, but a check failed: show it, exit 4
        if isinstance(failed.result, RunResult):
            _print_run(options, failed.result)
        raise
    _print_run(options, run)


def _print_run(options: WarehouseOptions, run: RunResult) -> None:
    if options.json:
        echo_json(run.as_dict())
    elif not options.quiet:
        echo_line(run.summary_line())
        unknown = run.unknown_field_counts()
        if unknown:
            kinds = (
                f"{kind}: " + ", ".join(f"{name} ({n:,})" for name, n in fields.items())
                for kind, fields in unknown.items()
            )
            echo_line("fields not loaded: " + "; ".join(kinds))  # names from the data: escaped
        if run.first_rejects:
            echo_line("first rejects:")
            for reject in run.first_rejects:
                echo_line(f"  {reject}")
        print_table(["table", "rows"], sorted(run.tables.items()))
        if run.checks is not None and run.checks.failed:
            _print_checks(run.checks.failed)


def _print_checks(results: Iterable[quality.CheckOutcome]) -> None:
    print_table(
        ["check", "severity", "failing rows", "passed", "what it verifies"],
        [(r.name, r.severity, r.failing_rows, r.passed, r.description) for r in results],
    )


@click.command("check")
@warehouse_options
def check_command(options: WarehouseOptions) -> None:
    """Run the data-quality checks; exit 4 when an error-severity check fails.

    \b
    Example:
      sparkify check --json
    """
    results = options.warehouse().check()
    if options.json:
        echo_json(results.as_list())
    elif not options.quiet:
        _print_checks(results)
    results.raise_on_failure()


@click.command("rejects")
@warehouse_options
@click.option("--run", "run_id", type=int, help="Only records rejected by this run.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def rejects_command(options: WarehouseOptions, run_id: int | None, limit: int) -> None:
    """List quarantined records: file, line, reason and the raw text.

    \b
    Example:
      sparkify rejects --run 3 --json
    """
    rejects = options.warehouse().rejects(run_id, limit=limit)
    if options.json:
        echo_json(rejects)
    else:
        rows = [(*row[:4], (row[4] or "")[:80]) for row in rejects.tuples()]
        print_table(rejects.columns, rows, f"{len(rows)} rejected records")


@click.command("query")
@warehouse_options
@click.argument("name", required=False)
@click.option("--sql", "sql_text", metavar="SQL", help="Run this SQL instead of a named query.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=analytics.DEFAULT_LIMIT,
    show_default=True,
    help="Rows for top-N queries.",
)
@click.option(
    "--grain",
    type=click.Choice(analytics.GRAINS),
    help=f"Period of the per-period queries [default: {analytics.DEFAULT_GRAIN}].",
)
@click.option("--since", metavar="DATE", help="Only events on or after DATE (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Only events on or before DATE (YYYY-MM-DD).")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries.")
def query_command(
    options: WarehouseOptions,
    name: str | None,
    sql_text: str | None,
    as_csv: bool,
    limit: int,
    grain: str | None,
    since: str | None,
    until: str | None,
    list_queries: bool,
) -> None:
    """Answer an analytical question by NAME, or run --sql.

    --grain, --since and --until apply to the queries whose options (--list) name them.

    \b
    Examples:
      sparkify query top_songs --limit 5
      sparkify query plays_by_hour --csv
      sparkify query active_users --grain week --since 2018-11-01 --until 2018-11-30
      sparkify query --sql "SELECT level, COUNT(*) FROM users GROUP BY level"
    """
    if as_csv and options.json:
        raise ConfigError("--json and --csv cannot be used together")
    if list_queries:
        catalogue = [(q.name, " ".join(q.options), q.question) for q in analytics.QUERIES]
        if options.json:
            echo_json([{"name": n, "options": o.split(), "question": q} for n, o, q in catalogue])
        else:
            print_table(["name", "options", "question"], catalogue)
        return
    if bool(name) == bool(sql_text):
        raise ConfigError("give a query NAME or --sql (see sparkify query --list)")
    start, end = date_range(since, until, ("--since", "--until"))
    values = {"grain": grain, "since": start, "until": end}
    given = {option: value for option, value in values.items() if value is not None}
    if sql_text:
        if given:
            raise ConfigError(f"--sql takes no --{next(iter(given))} (filter in the SQL itself)")
        rows = options.warehouse().query(sql_text)
        _print_rows(options, rows, as_csv, "")
        return
    query = analytics.get_query(name or "")
    for option in given:
        if option not in query.options:
            takes = " ".join(f"--{o}" for o in query.options) or "no options"
            raise ConfigError(f"query {query.name} takes no --{option} (it takes {takes})")
    rows = options.warehouse().query(query.name, limit=limit, **given)
    _print_rows(options, rows, as_csv, query.question)


def _print_rows(options: WarehouseOptions, rows: Rows, as_csv: bool, title: str) -> None:
    if options.json:
        echo_json(rows)
    elif as_csv:
        write_csv(rows.columns, rows.tuples())
    else:
        print_table(rows.columns, rows.tuples(), title)


@click.command("sql")
@click.option(
    "--backend",
    "backend_name",
    default="duckdb",
    show_default=True,
    help="Dialect to print: duckdb, postgres or redshift.",
)
def sql_command(backend_name: str) -> None:
    """Print every statement a run sends, in order, without connecting (a dry run).

    The run's declared plan, step by step: each step says when it runs, and bound values
    are shown as the driver's placeholders. The output is one SQL script.

    \b
    Example:
      sparkify sql --backend redshift > run.sql
    """
    click.echo(dry_run_text(backend_class(backend_name)), nl=False)


COMMANDS = (
    create_tables_command,
    etl_command,
    check_command,
    rejects_command,
    query_command,
    sql_command,
)

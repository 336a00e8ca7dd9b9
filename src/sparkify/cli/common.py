"""Pieces every command shares: option bundles, settings, output as table/JSON/CSV, errors."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn

import click
import orjson

from sparkify.api import Warehouse, resolve_settings
from sparkify.config import Settings
from sparkify.errors import EXIT_INTERRUPTED, SparkifyError
from sparkify.progress import ProgressFactory, progress_factory
from sparkify.text import printable


@dataclass(frozen=True)
class WarehouseOptions:
    """The options every warehouse command accepts, built once at the CLI boundary."""

    config: str | None
    backend: str | None
    database: str | None
    dsn: str | None
    schema: str | None
    quiet: bool
    json: bool

    def settings(self) -> Settings:
        return settings_for_people(
            resolve_settings(
                self.config,
                backend=self.backend,
                database=self.database,
                dsn=self.dsn,
                schema=self.schema,
            )
        )

    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings())

    @property
    def progress(self) -> ProgressFactory:
        return progress_factory(self.quiet or self.json)


JSON_ERRORS = "sparkify.json_errors"  # ctx.meta key: --json was given, errors as JSON too


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_ERRORS] = True  # meta is shared with the parent contexts
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    is_eager=True,  # known before any other option can fail
    callback=_remember_json,
    help="Print the result as JSON (an error too, on stderr).",
)


def warehouse_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config/--backend/--database/--dsn/--schema/--quiet/--json as ``options``."""

    @click.option("--config", "config", metavar="FILE", help="Config file (default: ./dwh.cfg).")
    @click.option("--backend", metavar="NAME", help="duckdb (default), postgres or redshift.")
    @click.option("--database", metavar="PATH", help="DuckDB database file.")
    @click.option("--dsn", metavar="URL", help="Server connection URL (postgres, redshift).")
    @click.option("--schema", metavar="NAME", help="Schema for the tables (server backends).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter.")
    @json_option
    @functools.wraps(command)
    def wrapper(
        config: str | None,
        backend: str | None,
        database: str | None,
        dsn: str | None,
        schema: str | None,
        quiet: bool,
        as_json: bool,
        **kwargs: Any,
    ) -> Any:
        options = WarehouseOptions(config, backend, database, dsn, schema, quiet, as_json)
        return command(options=options, **kwargs)

    return wrapper


def iso_timestamp(value: dt.date | dt.time) -> str:
    """ISO 8601; a timestamp with its UTC offset (the warehouse's naive timestamps are UTC)."""
    if isinstance(value, dt.datetime):
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return utc.isoformat()
    return value.isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # exact: its digits as a JSON number, not a float
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, dt.date | dt.time):
        return iso_timestamp(value)
    raise TypeError(type(value).__name__)


def to_json(data: Any) -> str:
    return orjson.dumps(
        data,
        default=_json_default,
        option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME,
    ).decode()


def echo_json(data: Any) -> None:
    click.echo(to_json(data))


def format_cell(value: Any) -> str:
    """A value for people: thousands separators, at most three decimals (a smaller number in
    scientific notation, never a false 0)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if (value and abs(value) < 0.0005) or abs(value) >= 1e15:
            return repr(value)
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    return str(value)


def csv_cell(value: Any) -> str:
    """A value for programs: exact (shortest round-trip floats, every decimal digit) and
    timestamps in ISO 8601 with their UTC offset."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return iso_timestamp(value)
    return str(value)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """A table for people. Every header and cell is plain text (never Rich markup), with the
    characters a terminal acts on escaped (see ``printable``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(printable(title)) if title else None, title_justify="left")
    for name in columns:
        table.add_column(Text(printable(name)))
    for row in rows:
        table.add_row(*(Text(printable(format_cell(v))) for v in row))
    Console(soft_wrap=True).print(table)


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[csv_cell(v) for v in row] for row in rows])
    sys.stdout.write(buffer.getvalue())


def echo_line(text: str, err: bool = False) -> None:
    """One line for people, which may quote the data or a file name: escaped, never markup."""
    click.echo(printable(text), err=err)


def info(options: WarehouseOptions, message: str) -> None:
    """Chatter for people: on stderr, silent with --quiet or --json."""
    if not (options.quiet or options.json):
        echo_line(message, err=True)


def settings_for_people(settings: Settings) -> Settings:
    """Print the settings' warnings (a readable secret...) on stderr, one line each."""
    for warning in settings.warnings:
        echo_line(f"warning: {warning}", err=True)
    return settings


def fail(message: str, exit_code: int) -> NoReturn:
    """One ``error:`` line on stderr (a message of several lines is joined), or with --json
    one JSON object, then exit."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(JSON_ERRORS):
        line = orjson.dumps({"error": " ".join(lines), "exit_code": exit_code}).decode()
        click.echo(line, err=True)
    else:
        echo_line("error: " + " ".join(lines), err=True)
    sys.exit(exit_code)


def interrupted() -> NoReturn:
    """Ctrl-C: ``interrupted`` on stderr (with --json, the JSON error object), exit 130."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(JSON_ERRORS):
        fail("interrupted", EXIT_INTERRUPTED)
    click.echo("interrupted", err=True)
    sys.exit(EXIT_INTERRUPTED)


def handle_errors(error: SparkifyError) -> None:
    fail(str(error), error.exit_code)

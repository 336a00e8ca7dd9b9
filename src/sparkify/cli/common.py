"""Pieces every command shares: option bundles, settings, output as table/JSON/CSV, errors."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import click
import orjson

from sparkify.backends import Backend, open_backend
from sparkify.config import Settings, load_settings
from sparkify.errors import SparkifyError
from sparkify.progress import ProgressFactory, progress_factory


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

    def settings(self, **extra: str | None) -> Settings:
        overrides: dict[tuple[str, str], str | None] = {
            ("WAREHOUSE", "BACKEND"): self.backend,
            ("WAREHOUSE", "PATH"): self.database,
            ("WAREHOUSE", "DSN"): self.dsn,
            ("WAREHOUSE", "SCHEMA"): self.schema,
        }
        for key, value in extra.items():
            section, name = key.split("__")
            overrides[(section.upper(), name.upper())] = value
        return load_settings(self.config, overrides)

    def backend_for(self, settings: Settings | None = None) -> Backend:
        return open_backend(settings or self.settings())

    @property
    def progress(self) -> ProgressFactory:
        return progress_factory(self.quiet or self.json)


def warehouse_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config/--backend/--database/--dsn/--schema/--quiet/--json as ``options``."""

    @click.option("--config", "config", metavar="FILE", help="Config file (default: ./dwh.cfg).")
    @click.option("--backend", metavar="NAME", help="duckdb (default), postgres or redshift.")
    @click.option("--database", metavar="PATH", help="DuckDB database file.")
    @click.option("--dsn", metavar="URL", help="Server connection URL (postgres, redshift).")
    @click.option("--schema", metavar="NAME", help="Schema for the tables (server backends).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
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


@contextmanager
def connected(backend: Backend, wait_seconds: float = 0.0) -> Iterator[Backend]:
    backend.connect(wait_seconds=wait_seconds)
    try:
        yield backend
    finally:
        backend.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def to_json(data: Any) -> str:
    return orjson.dumps(
        data, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


def echo_json(data: Any) -> None:
    click.echo(to_json(data))


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    return str(value)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, title_justify="left")
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*(format_cell(v) for v in row))
    Console(soft_wrap=True).print(table)


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[format_cell(v) for v in row] for row in rows])
    sys.stdout.write(buffer.getvalue())


def info(options: WarehouseOptions, message: str) -> None:
    """Chatter for people: on stderr, silent with --quiet or --json."""
    if not (options.quiet or options.json):
        click.echo(message, err=True)


def fail(message: str, exit_code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def handle_errors(error: SparkifyError) -> None:
    fail(str(error), error.exit_code)

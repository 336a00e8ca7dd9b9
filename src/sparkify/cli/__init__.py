"""The ``sparkify`` command line: a thin layer over the library.

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error, 3 too many rejected
records, 4 data-quality checks failed.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from sparkify import __version__
from sparkify.cli.common import fail, handle_errors
from sparkify.errors import EXIT_USAGE, SparkifyError


class SparkifyGroup(click.Group):
    """Turns the library's errors into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SparkifyError as error:
            handle_errors(error)
        except OSError as error:  # a path the user gave: not a folder, no permission, ...
            where = f"{error.filename}: " if error.filename else ""
            fail(f"{where}{error.strerror or error}", EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=SparkifyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sparkify")
def cli() -> None:
    """Raw music-streaming JSON to an analytics star schema.

    \b
    Quick start (embedded DuckDB, no server):
      sparkify demo
    """


def _register() -> None:
    from sparkify.cli import data, settings, warehouse

    for module in (settings, warehouse, data):
        for command in module.COMMANDS:
            cli.add_command(command)
    for optional in ("sparkify.cli.report", "sparkify.cli.aws"):
        try:
            module = __import__(optional, fromlist=["COMMANDS"])
        except ModuleNotFoundError as exc:
            if exc.name != optional:
                raise
            continue
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="sparkify")

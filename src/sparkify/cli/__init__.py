"""The ``sparkify`` command line: a thin layer over the library.

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error, 3 too many rejected
records, 4 data-quality checks failed.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from sparkify import __version__
from sparkify.cli.common import fail, handle_errors
from sparkify.errors import EXIT_USAGE, SparkifyError


def usage_error(error: click.ClickException) -> NoReturn:
    """Click's usage errors as one ``error:`` line, with the command's help to turn to.
    A group run without a command shows its help, as click does."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        error.show()
        sys.exit(error.exit_code)
    ctx = getattr(error, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    fail(error.format_message() + hint, error.exit_code)


class SparkifyGroup(click.Group):
    """Turns the library's errors and click's usage errors into one line on stderr and a
    documented exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as error:
            usage_error(error)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            usage_error(error)
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
    from sparkify.cli import aws, data, report, settings, warehouse

    for module in (settings, warehouse, data, report, aws):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="sparkify")

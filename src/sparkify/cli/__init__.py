"""The ``sparkify`` command line: a thin layer over the library.

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error, 3 too many rejected
records, 4 data-quality checks failed.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, NoReturn

import click

from sparkify import __version__, logs
from sparkify.cli.common import fail, handle_errors, interrupted
from sparkify.errors import EXIT_USAGE, SparkifyError, os_error_message


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
            fail(os_error_message(error), EXIT_USAGE)
        except KeyboardInterrupt:
            interrupted()


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
            cli.add_command(with_logging(command))


def with_logging(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) --log-level and --log-format; the
    logging is set up before the command runs."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_logging(sub)
        return command
    command.params += [
        click.Option(
            ["--log-level"],
            type=click.Choice(logs.LEVELS, case_sensitive=False),
            help="Log from this level up, on stderr (default: $SPARKIFY_LOG_LEVEL, else info "
            "without a terminal and warning on one or with --quiet).",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(logs.FORMATS),
            help="Log lines as text, or as JSON objects (the default with --json).",
        ),
    ]
    run = command.callback
    assert run is not None

    @functools.wraps(run)
    def configured(*args: Any, log_level: str | None, log_format: str | None, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        fmt = log_format or ("json" if as_json else "text")
        with logs.to_stderr(log_level, fmt, quiet=bool(kwargs.get("quiet"))):
            return run(*args, **kwargs)

    command.callback = configured
    return command


_register()


def main() -> None:
    cli(prog_name="sparkify")

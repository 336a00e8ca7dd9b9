"""Errors a user can hit, each mapped to a documented exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_TOO_MANY_REJECTS = 3
EXIT_QUALITY = 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class SparkifyError(Exception):
    """An error with a one-line message meant for the user."""

    exit_code = EXIT_RUNTIME


class ConfigError(SparkifyError):
    """Bad configuration or usage: unknown backend, missing value, unreadable file."""

    exit_code = EXIT_USAGE


class MissingExtra(ConfigError):
    """An optional package is not installed; the message names the extra that installs it."""


@contextmanager
def needs(extra: str, purpose: str) -> Iterator[None]:
    """Turn the ImportError of an optional package imported inside this block into a
    ``MissingExtra`` naming ``extra``: "the report needs jinja2: pip install 'sparkify[report]'".
    """
    try:
        yield
    except ImportError as exc:
        package = (exc.name or "").partition(".")[0]
        if package == "sparkify":
            raise  # a bug of ours, not a missing package
        what = f"needs {package}" if package else f"cannot import ({str(exc).splitlines()[0]})"
        raise MissingExtra(f"{purpose} {what}: pip install 'sparkify[{extra}]'") from None


class SourceError(SparkifyError):
    """Raw input cannot be listed or read (missing path, bucket, permissions)."""

    exit_code = EXIT_USAGE


class ConnectionFailed(SparkifyError):
    """The warehouse cannot be reached or refuses the credentials."""

    exit_code = EXIT_USAGE


class WarehouseError(SparkifyError):
    """The warehouse refused a statement (a data or SQL error); not worth retrying."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate  # the server's SQLSTATE, when it gave one


class TransientWarehouseError(WarehouseError):
    """A failure that may pass (connection reset, serialization failure); safe to retry."""


class RunInProgress(SparkifyError):
    """Another run holds the warehouse."""


class TooManyRejects(SparkifyError):
    """More records were rejected than --max-errors allows; the run was rolled back."""

    exit_code = EXIT_TOO_MANY_REJECTS


class QualityCheckFailed(SparkifyError):
    """At least one error-severity data-quality check failed. ``result`` holds what was
    checked: the run's ``RunResult`` after ``etl``, else the ``CheckResult``."""

    exit_code = EXIT_QUALITY

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


def os_error_message(error: OSError) -> str:
    """``path: reason`` for an OSError on a path the user gave."""
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error}"


@contextmanager
def from_os_error() -> Iterator[None]:
    """An OSError inside (a path that is not a folder, no permission, ...) becomes a
    ConfigError (exit code 2) naming the path."""
    try:
        yield
    except OSError as error:
        raise ConfigError(os_error_message(error)) from error

"""Logging for the command line: the ``sparkify`` loggers to stderr, as text or JSON lines.

The library only logs (``logging.getLogger("sparkify.<module>")``) and configures nothing;
a program that uses the Python API sees the records through its own logging setup (Airflow
puts them in the task log). Messages never hold a secret: warehouses are named by
``Backend.describe()``, which leaves passwords out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import orjson

from sparkify.config import unknown_name_message
from sparkify.errors import ConfigError
from sparkify.text import printable

LEVEL_ENV = "SPARKIFY_LOG_LEVEL"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")

# The attributes every LogRecord has; anything else was passed in ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-12-03T07:50:01.123Z INFO sparkify.api: message``, the message escaped for a
    terminal (``printable``)."""

    def format(self, record: logging.LogRecord) -> str:
        message = printable(record.getMessage())  # may quote the data or a file name
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extra
    fields (a progress line's counts, a run's summary)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def resolve_level(level: str | None, quiet: bool, stream: TextIO) -> str:
    """``level``, else ``$SPARKIFY_LOG_LEVEL``, else ``warning`` with ``--quiet`` or on a
    terminal (where bars and the summary speak) and ``info`` without one (cron, CI,
    schedulers: the log is all there is)."""
    chosen = level or os.environ.get(LEVEL_ENV)
    if not chosen:
        return "warning" if quiet or stream.isatty() else "info"
    chosen = chosen.strip().lower()
    if chosen not in LEVELS:
        raise ConfigError(unknown_name_message("log level", chosen, LEVELS))
    return chosen


@contextmanager
def to_stderr(
    level: str | None = None,
    log_format: str = "text",
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> Iterator[None]:
    """While inside, ``sparkify.*`` records at ``level`` and above go to ``stream`` (stderr)
    in ``log_format``, and only there; afterwards the loggers are as they were."""
    stream = stream or sys.stderr
    logger = logging.getLogger("sparkify")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    before = logger.level, logger.propagate
    logger.setLevel(resolve_level(level, quiet, stream).upper())
    logger.propagate = False  # the command line owns stderr; nothing is printed twice
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]

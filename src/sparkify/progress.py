"""Progress of long work: Rich bars on a terminal; elsewhere (cron, CI, a scheduler, the
Python API) a log line at a steady interval, so a long run is never silent until it ends."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

log = logging.getLogger(__name__)

INTERVAL_ENV = "SPARKIFY_PROGRESS_SECONDS"
DEFAULT_INTERVAL_SECONDS = 10.0


class Advance(Protocol):
    """Reports work done: ``amount`` in the task's unit, and the files and records it held."""

    def __call__(self, amount: int, /, *, files: int = 0, records: int = 0) -> None: ...


class ProgressFactory(Protocol):
    def __call__(
        self, description: str, total: int, unit: str = "items"
    ) -> AbstractContextManager[Advance]: ...


@contextmanager
def _silent(description: str, total: int, unit: str = "items") -> Iterator[Advance]:
    def advance(amount: int, /, *, files: int = 0, records: int = 0) -> None:
        pass

    yield advance


NO_PROGRESS: ProgressFactory = _silent


def progress_factory(quiet: bool) -> ProgressFactory:
    """Nothing when ``quiet``; Rich bars when writing to a terminal outside CI; else log
    lines (see :func:`progress_log`)."""
    if quiet:
        return NO_PROGRESS
    if os.environ.get("CI") or not sys.stderr.isatty():
        return progress_log()
    return _rich_progress


@contextmanager
def _rich_progress(description: str, total: int, unit: str = "items") -> Iterator[Advance]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    amount = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = (TextColumn("{task.description}"), BarColumn(), amount, TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(amount: int, /, *, files: int = 0, records: int = 0) -> None:
            bar.advance(task, amount)

        yield advance


def progress_log(interval: float | None = None) -> ProgressFactory:
    """Log (INFO, logger ``sparkify.progress``) where a task stands every ``interval``
    seconds (default ``$SPARKIFY_PROGRESS_SECONDS`` or 10) and when it ends: files,
    records, share done and records per second. The JSON log format carries the figures
    as fields."""
    seconds = interval or float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_SECONDS)

    @contextmanager
    def logged(description: str, total: int, unit: str = "items") -> Iterator[Advance]:
        tally = _Tally(description, total, unit)
        stop = threading.Event()

        def report_steadily() -> None:
            while not stop.wait(seconds):
                tally.log("running")

        reporter = threading.Thread(target=report_steadily, name="sparkify-progress", daemon=True)
        reporter.start()
        try:
            yield tally.advance
        finally:
            stop.set()
            reporter.join()
        tally.log("done")

    return logged


class _Tally:
    """Counts of one task, written by the working thread, read by the reporting one."""

    def __init__(self, description: str, total: int, unit: str) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done = self.files = self.records = 0
        self.started = time.monotonic()

    def advance(self, amount: int, /, *, files: int = 0, records: int = 0) -> None:
        self.done += amount
        self.files += files
        self.records += records

    def log(self, state: str) -> None:
        seconds = time.monotonic() - self.started
        rate = self.records / seconds if seconds > 0 else 0.0
        share = f"{100 * self.done / self.total:.0f}%" if self.total else "100%"
        counts = f"{self.files:,} files, {self.records:,} records, " if self.files else ""
        amount = f"{_amount(self.done, self.unit)} of {_amount(self.total, self.unit)} " + (
            "MB" if self.unit == "bytes" else self.unit
        )
        log.info(
            "%s: %s%s (%s) after %.1f s%s",
            self.description,
            counts,
            amount,
            share,
            seconds,
            f", {rate:,.0f} rows/s" if self.records else "",
            extra={
                "progress": {
                    "task": self.description,
                    "state": state,
                    "files": self.files,
                    "records": self.records,
                    "done": self.done,
                    "total": self.total,
                    "unit": self.unit,
                    "seconds": round(seconds, 3),
                    "rows_per_s": round(rate),
                }
            },
        )


def _amount(value: int, unit: str) -> str:
    return f"{value / 1e6:,.1f}" if unit == "bytes" else f"{value:,}"

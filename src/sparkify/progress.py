"""Progress display: Rich bars on a terminal, nothing when quiet, in CI or piped."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class ProgressFactory(Protocol):
    def __call__(
        self, description: str, total: int, unit: str = "items"
    ) -> AbstractContextManager[Advance]: ...


@contextmanager
def _silent(description: str, total: int, unit: str = "items") -> Iterator[Advance]:
    yield lambda n: None


NO_PROGRESS: ProgressFactory = _silent


def progress_factory(quiet: bool) -> ProgressFactory:
    """Rich progress bars when writing to a terminal outside CI and not ``--quiet``."""
    if quiet or os.environ.get("CI") or not sys.stderr.isatty():
        return NO_PROGRESS

    @contextmanager
    def rich_progress(description: str, total: int, unit: str = "items") -> Iterator[Advance]:
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
            yield lambda n: bar.advance(task, n)

    return rich_progress

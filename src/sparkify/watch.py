"""Continuous loading for users without a scheduler (``sparkify etl --watch``).

``watch`` calls ``run_once`` once per tick of ``interval`` seconds, counted from the start of
one run to the start of the next; a run that outlasts the interval is followed by the next one
at once, never overlapped. ``StopSignals`` turns SIGINT and SIGTERM into a clean stop: between
runs at once; during a run, once the run is over (committed, or rolled back if it failed). A
second signal during a run interrupts it (``KeyboardInterrupt``), and its transaction rolls back
unless it had already committed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT and SIGTERM handlers for the duration of a ``with`` block. ``notify`` is told
    when a stop is requested during a run (the run goes on to its end)."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify
        self.requested = threading.Event()
        self.in_run = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.in_run and self.requested.is_set():
            raise KeyboardInterrupt(name)
        self.requested.set()
        if self.in_run:
            self.notify(f"{name}: stopping after the current run (again to interrupt it)")

    @contextmanager
    def running(self) -> Iterator[bool]:
        """Marks a run in progress; yields False when a stop was requested already."""
        self.in_run = True
        try:
            yield not self.requested.is_set()
        finally:
            self.in_run = False

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a stop is requested."""
        return self.requested.wait(max(seconds, 0.0))


def watch(run_once: Callable[[int], None], interval: float, stop: StopSignals) -> None:
    """Call ``run_once(tick)`` every ``interval`` seconds until ``stop`` is requested."""
    tick = 0
    next_start = time.monotonic()
    while True:
        with stop.running() as go:
            if not go:
                return
            tick += 1
            run_once(tick)
        next_start = max(next_start + interval, time.monotonic())
        if stop.wait(next_start - time.monotonic()):
            return

"""Rebuilding whole tables on several connections, swapped in at commit.

A run that replaces every row (a first load, ``--full-refresh``) need not build its tables
inside its one transaction: what readers and crashes need is that the new tables appear all
at once or not at all. On a backend whose ``capabilities.parallel_build`` says so
(PostgreSQL), the run's transaction takes the run lock as always, and the tables are built
anew in a schema of their own, the build schema, by build connections that commit as they
go: the first one stages the rows and writes the ledger, then the transforms run on several
connections at once (``plan.build_lanes``; one waits for another where it reads what that
one builds). Nobody reads the build schema. Last, the run's
transaction drops the old tables, moves the new ones in (``Backend.swap_sql``), records the
run and commits: readers see the old tables until that commit and the new ones after it. A
run that fails drops its build schema before its transaction ends; the build schema of a
run that was killed is dropped by the next run, under the run lock (``drop_dead_builds``).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sparkify.backends import Backend
from sparkify.plan import Lanes, Step

CLEANUP_LOCK_MS = 5000  # how long dropping a failed run's build schema may wait for a lock


def drop_dead_builds(backend: Backend) -> None:
    """Drop the build schemas that runs which died left behind (under the run lock: no run
    is building then)."""
    found = backend.query(backend.dead_builds_sql(), {"prefix": backend.build_prefix()})
    for (name,) in found.rows:
        backend.execute(backend.drop_build_sql(name))


class Build:
    """The build schema of one run and its connections."""

    def __init__(self, main: Backend) -> None:
        self.main = main  # holds the run's transaction
        self.schema = main.build_prefix() + uuid.uuid4().hex[:8]
        self.connections: list[Backend] = []
        self.failure: BaseException | None = None
        self.stopping = False
        self.swapping = False
        self._lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}  # per transform: it has run

    def start(self) -> Backend:
        """Create the build schema and its empty tables; returns the first build connection."""
        first = self._connect()
        for sql in first.build_tables_sql():
            first.execute(sql)
        return first

    def _connect(self) -> Backend:
        connection = self.main.build_connection(self.schema)
        with self._lock:
            self.connections.append(connection)
            if self.stopping:
                connection.cancel()
        return connection

    def transform(self, lanes: Lanes, do: Callable[[Backend, Step], None]) -> None:
        """Each connection's steps (``lanes.steps[0]`` on the first build connection, the
        others on new ones), at once in threads, a step waiting for those of other
        connections it comes after; the first failure stops the others and is raised."""
        self._done = {step.name: threading.Event() for steps in lanes.steps for step in steps}
        with ThreadPoolExecutor(len(lanes.steps), thread_name_prefix="sparkify-build") as pool:
            try:
                for future in [
                    pool.submit(self._lane, n, steps, lanes.after, do)
                    for n, steps in enumerate(lanes.steps)
                ]:
                    future.result()
            except BaseException as exc:  # a lane's failure, or Ctrl-C in this thread
                self._stop(exc)
        if self.failure is not None:
            raise self.failure

    def _lane(
        self,
        n: int,
        steps: tuple[Step, ...],
        after: dict[str, tuple[str, ...]],
        do: Callable[[Backend, Step], None],
    ) -> None:
        try:
            connection = self.connections[0] if n == 0 else self._connect()
            for step in steps:
                for name in after.get(step.name, ()):
                    self._done[name].wait()
                if self.stopping:
                    return
                do(connection, step)
                self._done[step.name].set()
        except BaseException as exc:
            self._stop(exc)

    def _stop(self, exc: BaseException) -> None:
        """The first failure is kept; every build connection's statement is cancelled."""
        with self._lock:
            if self.failure is None:
                self.failure = exc
            self.stopping = True
            connections = list(self.connections)
        for done in self._done.values():  # no connection waits for a step that never ends
            done.set()
        for connection in connections:
            connection.cancel()

    def swap(self) -> None:
        """In the run's transaction: the new tables replace the old ones."""
        self.close()
        self.swapping = True
        self.main.swap(self.schema)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections.clear()

    def discard(self) -> None:
        """After a failure, while the run's transaction still holds the run lock: the build
        connections stop, a swap begun is undone, and the build schema goes. What cannot
        go (the run's connection broke) is dropped by the next run."""
        with self._lock:
            self.stopping = True
        for connection in self.connections:
            connection.cancel()
        self.close()
        with contextlib.suppress(Exception):
            if self.swapping:
                self.main.unswap()
            cleaner = self.main.sibling()
            try:
                cleaner.run("lock_wait", {"timeout": str(CLEANUP_LOCK_MS)})  # never hang
                cleaner.execute(cleaner.drop_build_sql(self.schema))
            finally:
                cleaner.close()

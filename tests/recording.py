"""Recording what a run sends to the driver (psycopg's cursor, DuckDB's connection), to hold
it to the run plan (a pytest plugin: the ``recorder`` and ``two_days`` fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import psycopg
import pytest
from datasets import DAY_MS, NOV_1, play, song, write_day, write_song

from sparkify.pipeline import EtlOptions, RunSummary, run_etl
from sparkify.plan import CONDITIONS

if TYPE_CHECKING:
    from conftest import Warehouse


class Recorder:
    """Every statement sent to psycopg or DuckDB while ``on``, and the connection it went
    to."""

    def __init__(self) -> None:
        self.on = False
        self.sent: list[str] = []
        self.connections: list[int] = []  # per statement sent, its connection's id()

    def wrap(self, method: Any) -> Any:
        def recorded(this: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.sent.append(str(query))
                self.connections.append(id(getattr(this, "connection", this)))
            return method(this, query, *args, **kwargs)

        return recorded

    def by_connection(self, names: dict[str, str]) -> list[list[str]]:
        """The statements sent, per connection in the order each was first used, with the
        names ``names`` maps replaced (a build schema's, say, by the dry run's placeholder)."""
        found: dict[int, list[str]] = {}
        for connection, sql in zip(self.connections, self.sent, strict=True):
            for name, placeholder in names.items():
                sql = sql.replace(name, placeholder)
            found.setdefault(connection, []).append(sql)
        return list(found.values())


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    found = Recorder()
    for cls, name in (
        (psycopg.Cursor, "execute"),
        (psycopg.Cursor, "executemany"),
        (psycopg.Cursor, "copy"),
        (duckdb.DuckDBPyConnection, "execute"),
    ):
        monkeypatch.setattr(cls, name, found.wrap(getattr(cls, name)))
    return found


def recorded_run(
    warehouse: Warehouse, data: Path, recorder: Recorder
) -> tuple[RunSummary, list[str]]:
    backend = warehouse.backend()
    backend.connect()
    options = EtlOptions(songs=str(data / "song_data"), logs=str(data / "log_data"))
    recorder.sent, recorder.connections = [], []
    recorder.on = True
    try:
        summary = run_etl(backend, options)
    finally:
        recorder.on = False
        backend.close()
    return summary, recorder.sent


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    write_song(tmp_path, song("SO1", "Song One", "The Band", 200.0))
    write_day(tmp_path, [play(NOV_1 + 1000, 1, 10, 0, song="Song One", artist="The Band")])
    write_day(tmp_path, [play(NOV_1 + DAY_MS, 2, 11, 0, page="Home")])
    return tmp_path


def facts(**true: int | bool) -> dict[str, int | bool]:
    """The run plan's conditions: those named true (or a count), the others false."""
    return {name: true.get(name, False) for name in CONDITIONS}

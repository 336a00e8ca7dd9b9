"""A rebuild (a first load or --full-refresh, built on several connections and swapped in at
commit: sparkify.rebuild) gives the tables the one-transaction path gives, and readers see
the old tables or the new ones, never a mix."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Warehouse, dump, etl
from test_atomicity import builds, options

from sparkify.backends import Backend
from sparkify.backends.postgres import PostgresBackend
from sparkify.pipeline import Run, run_etl
from sparkify.plan import Step, build_lanes
from sparkify.rebuild import Build
from sparkify.tables import REBUILT

LEDGER = {
    "etl_files": "SELECT url, kind, size, version, fingerprint, lines_read, rows_staged, "
    "rows_rejected FROM etl_files ORDER BY url",
    "etl_rejects": "SELECT f.url, r.line_no, r.reason, r.raw FROM etl_rejects r "
    "JOIN etl_files f ON f.file_id = r.file_id ORDER BY f.url, r.line_no",
    "staging_events": "SELECT f.url, e.* FROM staging_events e JOIN etl_files f "
    "ON f.file_id = e.file_id ORDER BY f.url, e.line_no",
    "staging_songs": "SELECT f.url, s.* FROM staging_songs s JOIN etl_files f "
    "ON f.file_id = s.file_id ORDER BY f.url, s.line_no",
}


STAR = ("songplays", "users", "user_levels", "songs", "artists", "time")


def everything(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """The star tables, the ledger, the rejects and the staged rows (file ids aside)."""
    found = dump(warehouse)
    for table, sql in LEDGER.items():
        found[table] = [
            tuple(v for n, v in enumerate(row) if not (table.startswith("staging") and n == 1))
            for row in warehouse.query(sql)
        ]
    return found


@pytest.fixture
def postgres_warehouse(new_warehouse: Callable[[], Warehouse]) -> Callable[[], Warehouse]:
    if new_warehouse().name != "postgres":
        pytest.skip("PostgreSQL rebuilds on several connections; DuckDB changes in place")
    return new_warehouse


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The build schemas of the rebuilds started meanwhile (so a test knows it rebuilt)."""
    started: list[str] = []
    start = Build.start

    def recorded(self: Build) -> Backend:
        started.append(self.schema)
        return start(self)

    monkeypatch.setattr(Build, "start", recorded)
    return started


def in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL as if it could not rebuild: every run in its one transaction."""
    from sparkify.backends.postgres import PostgresBackend

    one = dataclasses.replace(PostgresBackend.capabilities, parallel_build=False)
    monkeypatch.setattr(PostgresBackend, "capabilities", one)


@pytest.fixture
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sparkify.generator import GenerateOptions, generate

    out = tmp_path_factory.mktemp("faulty")
    generate(out, GenerateOptions(users=30, days=5, songs=80, match_rate=0.5, bad_records=0.03))
    return out


@pytest.mark.parametrize("data", ["sample_data", "faulty"])
def test_a_rebuild_gives_the_tables_of_the_one_transaction_path(
    postgres_warehouse: Callable[[], Warehouse],
    rebuilds: list[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    data: str,
) -> None:
    source: Path = request.getfixturevalue(data)
    rebuilt = postgres_warehouse()
    first = etl(rebuilt, source)
    assert len(rebuilds) == 1 and all(check["passed"] for check in first["checks"])
    expected = everything(rebuilt)
    assert expected["songplays"] and (data == "sample_data" or expected["etl_rejects"])

    again = etl(rebuilt, source, "--full-refresh")  # a rebuild over a loaded warehouse
    assert len(rebuilds) == 2 and again["tables"] == first["tables"]
    assert everything(rebuilt) == expected

    with monkeypatch.context() as patched:
        in_place(patched)
        one = postgres_warehouse()
        etl(one, source)
        assert everything(one) == expected
        etl(one, source, "--full-refresh")
    assert len(rebuilds) == 2
    assert everything(one) == expected
    assert builds(rebuilt) == []


def load(warehouse: Warehouse, data: Path, fail_after: Callable[[str], None]) -> None:
    """A first load through the library, ``fail_after`` called at each checkpoint."""
    backend = warehouse.backend()
    backend.connect()
    try:
        run_etl(backend, options(data), fail_after=fail_after)
    finally:
        backend.close()


def test_a_transform_waits_for_what_another_connection_builds_for_it(
    postgres_warehouse: Callable[[], Warehouse],
    rebuilds: list[str],
    monkeypatch: pytest.MonkeyPatch,
    semantics_data: Path,
) -> None:
    """user_events is slow to build (held up after its statement): the transforms that
    read it on the other connection start only once it is done, and the tables are right."""
    lanes = build_lanes(PostgresBackend)
    waiting = {name for name, waits in lanes.after.items() if "upsert_user_events" in waits}
    assert waiting and lanes.connection_of("upsert_user_events") != lanes.connection_of(
        next(iter(waiting))
    )
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    step_on = Run.on_build_connection

    def timed(self: Run, backend: Backend, step: Step) -> None:
        started[step.name] = time.monotonic()
        step_on(self, backend, step)
        ended[step.name] = time.monotonic()

    def slow(checkpoint: str) -> None:
        if checkpoint == "upsert_user_events":
            time.sleep(0.5)

    monkeypatch.setattr(Run, "on_build_connection", timed)
    warehouse = postgres_warehouse()
    load(warehouse, semantics_data, slow)
    assert len(rebuilds) == 1
    assert all(started[name] >= ended["upsert_user_events"] for name in waiting)
    with monkeypatch.context() as patched:
        in_place(patched)
        one = postgres_warehouse()
        etl(one, semantics_data)
    assert everything(warehouse) == everything(one)


def test_autovacuum_leaves_the_tables_alone_while_they_are_built_and_after_the_swap_not(
    postgres_warehouse: Callable[[], Warehouse], rebuilds: list[str], semantics_data: Path
) -> None:
    """Autovacuum started on a table being built would hold up the swap's ALTER TABLE a
    whole deadlock_timeout (1 s) per table: it is off for the build tables, and the tables
    swapped in have it as any table has (no reloption left)."""
    warehouse = postgres_warehouse()
    options_of = (
        "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = '{}' AND c.relkind = 'r' ORDER BY 1"
    )
    during: list[tuple] = []

    def look(checkpoint: str) -> None:
        if checkpoint == "ledger":
            during.extend(warehouse.query(options_of.format(rebuilds[0])))

    load(warehouse, semantics_data, look)
    off = ["autovacuum_enabled=false"]  # (toast.autovacuum_enabled is its TOAST table's)
    assert {name for name, _ in during} == set(REBUILT)
    assert all(reloptions == off for _, reloptions in during), during
    schema = warehouse.overrides[("WAREHOUSE", "SCHEMA")]
    after = warehouse.query(options_of.format(schema))
    assert set(REBUILT) <= {name for name, _ in after}
    assert all(reloptions is None for _, reloptions in after), after


@pytest.fixture
def loaded(
    postgres_warehouse: Callable[[], Warehouse], rebuilds: list[str], semantics_data: Path
) -> Warehouse:
    """A PostgreSQL warehouse after a first load (a rebuild, counted in ``rebuilds``)."""
    warehouse = postgres_warehouse()
    etl(warehouse, semantics_data)
    return warehouse


def test_readers_see_the_old_tables_or_the_new_ones_never_a_mix(
    loaded: Warehouse, rebuilds: list[str], generated: Path
) -> None:
    warehouse = loaded
    counts = "SELECT " + ", ".join(
        f"(SELECT COUNT(*) FROM {table})"
        for table in (*STAR, "staging_events", "staging_songs", "etl_files")
    )
    old = warehouse.query(counts)[0]
    seen: list[tuple] = []
    done = threading.Event()

    def read() -> None:
        reader = warehouse.backend()
        reader.read_only = True
        reader.connect()
        try:
            while not done.is_set():
                seen.append(reader.query(counts).rows[0])
        finally:
            reader.close()

    reading = threading.Thread(target=read)
    reading.start()
    backend = warehouse.backend()
    backend.connect()
    try:  # each step waits a little, so that reads fall between all of them
        run_etl(
            backend, options(generated, full_refresh=True), fail_after=lambda _: time.sleep(0.2)
        )
    finally:
        backend.close()
        time.sleep(0.3)
        done.set()
        reading.join()
    new = warehouse.query(counts)[0]
    assert len(rebuilds) == 2 and new != old  # the first load, then the refresh
    assert set(seen) <= {old, new}
    assert seen[0] == old and seen[-1] == new
    assert seen.count(old) > 10  # the reads fell during the run


def test_a_second_run_waits_for_a_rebuild_in_progress(
    loaded: Warehouse, rebuilds: list[str], semantics_data: Path, generated: Path
) -> None:
    """Two runs still take turns on the run lock while the first builds elsewhere."""
    warehouse = loaded
    building, go_on = threading.Event(), threading.Event()

    def pause(step: str) -> None:
        if step == "upsert_songplays":
            building.set()
            go_on.wait(60)

    def first_run() -> None:
        backend = warehouse.backend()
        backend.connect()
        try:
            run_etl(backend, options(generated, full_refresh=True), fail_after=pause)
        finally:
            backend.close()

    running = threading.Thread(target=first_run)
    running.start()
    try:
        assert building.wait(60)
        busy = warehouse.cli(
            "etl", "--songs", str(semantics_data / "song_data"), "--logs",
            str(semantics_data / "log_data"), "--full-refresh",
        )  # fmt: skip
        assert busy.exit_code == 1
        assert busy.stderr.startswith("error: another run is in progress")
    finally:
        go_on.set()
        running.join()
    after = etl(warehouse, semantics_data, "--full-refresh", "--wait", "30")
    assert after["tables"]["songplays"] == 3 and len(rebuilds) == 3
    assert builds(warehouse) == []


@pytest.mark.parametrize(
    ("added", "still_there"),
    [
        (
            "CREATE VIEW paid_plays AS SELECT * FROM songplays WHERE level = 'paid'",
            "SELECT COUNT(*) FROM paid_plays",
        ),
        (
            "CREATE INDEX plays_by_user ON songplays (user_id)",
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'plays_by_user' "
            "AND schemaname = current_schema()",
        ),
        (
            "GRANT SELECT ON users TO PUBLIC",
            "SELECT COUNT(*) FROM information_schema.role_table_grants "
            "WHERE grantee = 'PUBLIC' AND table_name = 'users' "
            "AND table_schema = current_schema()",
        ),
    ],
)
def test_what_was_added_to_the_tables_keeps_a_full_refresh_in_place(
    loaded: Warehouse, rebuilds: list[str], semantics_data: Path, added: str, still_there: str
) -> None:
    """A rebuild makes the tables as create-tables does and drops the old ones, which a view
    over one forbids and which would lose an index or a grant: such a warehouse is refreshed
    in place, in the run's one transaction, and keeps what was added."""
    warehouse = loaded
    assert len(rebuilds) == 1
    backend = warehouse.backend()
    backend.connect()
    try:
        backend.execute(added)
    finally:
        backend.close()
    refreshed = etl(warehouse, semantics_data, "--full-refresh")
    assert refreshed["tables"]["songplays"] == 3 and len(rebuilds) == 1
    assert warehouse.query(still_there) == [(1,)]

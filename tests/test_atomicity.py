"""A run commits everything or nothing, even when it fails or is killed; runs don't overlap."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Warehouse, dump, etl

from sparkify.pipeline import EtlOptions, run_etl
from sparkify.plan import TRANSFORM_STEPS

LEDGER = ("etl_files", "etl_rejects", "staging_events", "staging_songs")
STEPS = ("bulk_load", "parse", "stage", "ledger", *TRANSFORM_STEPS)


class Injected(Exception):
    """A failure injected between two steps of a run."""


def state(warehouse: Warehouse) -> dict[str, object]:
    tables = dump(warehouse)
    for table in LEDGER:
        tables[table] = warehouse.query(f"SELECT COUNT(*) FROM {table}")
    tables["runs"] = warehouse.query(
        "SELECT run_id, status FROM etl_runs WHERE status = 'succeeded' ORDER BY run_id"
    )
    return tables


def half_loaded(warehouse: Warehouse, generated: Path, tmp_path: Path) -> Path:
    """Load half the days, leaving the other half for the run under test."""
    from datasets import copy_days, event_days

    days = event_days(generated)
    data = copy_days(generated, tmp_path / "data", days[: len(days) // 2])
    etl(warehouse, data)
    copy_days(generated, data, days)
    return data


def options(data: Path, full_refresh: bool = False) -> EtlOptions:
    return EtlOptions(
        songs=str(data / "song_data"), logs=str(data / "log_data"), full_refresh=full_refresh
    )


def builds(warehouse: Warehouse) -> list[str]:
    """The build schemas of a rebuild (sparkify.rebuild) in the warehouse's database."""
    backend = warehouse.backend()
    if not backend.capabilities.parallel_build:
        return []
    backend.connect()
    try:
        found = backend.query(backend.dead_builds_sql(), {"prefix": backend.build_prefix()})
        return [name for (name,) in found.rows]
    finally:
        backend.close()


# Each run under test loads the second half of the days onto the first half: in place (an
# incremental run, in its one transaction), or with --full-refresh (on PostgreSQL a rebuild:
# the tables built on several connections, swapped in at commit; "swap" is its last step).
MODES = [
    *(("incremental", step) for step in STEPS),
    *(("full_refresh", step) for step in (*STEPS, "swap")),
]


@pytest.mark.parametrize(("mode", "step"), MODES)
def test_a_failure_between_steps_leaves_the_warehouse_as_before(
    warehouse: Warehouse, generated: Path, tmp_path: Path, mode: str, step: str
) -> None:
    full_refresh = mode == "full_refresh"
    if full_refresh and not warehouse.backend().capabilities.parallel_build:
        if step == "swap":
            pytest.skip("a step of a rebuild on several connections")
        if step not in ("stage", "refresh_time"):  # the rest is the incremental mode's path
            pytest.skip("a full refresh in place: two steps are enough")
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)

    def fail(current: str) -> None:
        if current == step:
            raise Injected(step)

    backend = warehouse.backend()
    backend.connect()
    try:
        with pytest.raises(Injected):
            run_etl(backend, options(data, full_refresh), fail_after=fail)
    finally:
        backend.close()
    assert state(warehouse) == before
    assert builds(warehouse) == []  # a failed rebuild drops its build schema at once
    summary = etl(warehouse, data, *(["--full-refresh"] if full_refresh else []))
    assert summary["files"]["new"] > 0
    assert all(check["passed"] for check in summary["checks"])


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import EtlOptions, run_etl

    overrides, songs, logs, step, mode = eval(sys.argv[1]), *sys.argv[2:6]

    def die(current):
        if current == step:
            os.kill(os.getpid(), signal.SIGKILL)

    import sparkify.backends.duckdb as duck

    def copy_half(source, target):
        with open(source, "rb") as f, open(target, "wb") as g:
            g.write(f.read(os.path.getsize(source) // 2))
        die("copy")

    if step == "copy":  # while DuckDB's file is copied for the run
        duck.shutil.copyfile = copy_half
    if step == "swap":  # the copy committed, just before it replaces the file
        duck._durable_replace = lambda work, path: die("swap")

    backend = open_backend(load_settings(overrides=overrides, environ={}))
    backend.connect()
    options = EtlOptions(songs=songs, logs=logs, full_refresh=mode == "full_refresh")
    run_etl(backend, options, fail_after=die)
    """
)


@pytest.mark.parametrize(
    ("mode", "step"),
    [
        *(
            ("incremental", step)
            for step in ("bulk_load", "stage", "upsert_songplays", "refresh_time", "copy", "swap")
        ),
        *(
            ("full_refresh", step)
            for step in ("bulk_load", "ledger", "upsert_songplays", "upsert_users", "swap")
        ),
    ],
)
def test_a_killed_run_leaves_the_warehouse_as_before(
    warehouse: Warehouse, generated: Path, tmp_path: Path, mode: str, step: str
) -> None:
    """``copy``: while DuckDB's file is copied for the run; ``swap``: the copy committed, just
    before it replaces the file (DuckDB), or a rebuild's tables moved in, before the commit
    (PostgreSQL)."""
    rebuilds = warehouse.backend().capabilities.parallel_build
    if mode == "incremental" and step in ("copy", "swap") and warehouse.name != "duckdb":
        pytest.skip("a step of DuckDB's runs")
    if mode == "full_refresh" and step != "upsert_songplays" and not rebuilds:
        pytest.skip("a full refresh in place: one step is enough")
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)
    args = [repr(warehouse.overrides), str(data / "song_data"), str(data / "log_data"), step, mode]
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert state(warehouse) == before
    if mode == "full_refresh" and rebuilds:  # its build schema, which nobody reads, is left
        assert len(builds(warehouse)) == 1
    summary = etl(warehouse, data)
    assert summary["files"]["new"] > 0
    assert all(check["passed"] for check in summary["checks"])
    assert builds(warehouse) == []  # the next run dropped it
    if warehouse.name == "duckdb":  # the killed run's copy is gone
        path = Path(warehouse.overrides[("WAREHOUSE", "PATH")])
        assert sorted(p.name for p in path.parent.glob(path.name + "*")) == [
            path.name,
            path.name + ".lock",
        ]


HOLDER = textwrap.dedent(
    """
    import sys
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import ensure_tables, holding_run_lock

    backend = open_backend(load_settings(overrides=eval(sys.argv[1]), environ={}))
    backend.connect()
    ensure_tables(backend)  # what a run does first, before its transaction
    with holding_run_lock(backend):
        for sql in sys.argv[2:]:  # what the run under way changes
            backend.execute(sql)
        print("holding", flush=True)
        sys.stdin.readline()
    """
)


def hold_run(warehouse: Warehouse, *changes: str) -> subprocess.Popen:
    """Another process in the middle of a run (having made ``changes``), until its stdin is
    closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, repr(warehouse.overrides), *changes],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    return holder


def release(holder: subprocess.Popen) -> None:
    if holder.poll() is None:
        holder.kill()
    holder.wait()


@pytest.fixture
def lock_holder(warehouse: Warehouse):  # type: ignore[no-untyped-def]
    """Another process in the middle of a run, until the test closes its stdin."""
    etl_ready = warehouse.cli("create-tables")
    assert etl_ready.exit_code == 0, etl_ready.stderr
    holder = hold_run(warehouse)
    yield holder
    release(holder)


def test_a_second_run_fails_clearly_while_another_is_in_progress(
    warehouse: Warehouse, lock_holder: subprocess.Popen, semantics_data: Path
) -> None:
    result = warehouse.cli(
        "etl",
        "--songs",
        str(semantics_data / "song_data"),
        "--logs",
        str(semantics_data / "log_data"),
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: another run is in progress")


def test_a_second_run_waits_with_wait(
    warehouse: Warehouse, lock_holder: subprocess.Popen, semantics_data: Path
) -> None:
    assert lock_holder.stdin is not None
    release = subprocess.Popen(
        ["sh", "-c", f"sleep 1; kill -TERM {lock_holder.pid}"], start_new_session=True
    )
    result = warehouse.cli(
        "etl",
        "--songs",
        str(semantics_data / "song_data"),
        "--logs",
        str(semantics_data / "log_data"),
        "--wait",
        "30",
        "--json",
    )
    release.wait()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tables"]["songplays"] == 3


READERS = [
    ("query", "top_songs", "--json"),
    ("query", "--sql", "SELECT COUNT(*) AS n FROM songplays", "--json"),
    ("check", "--json"),
    ("rejects", "--json"),
]


def test_readers_see_the_last_committed_state_while_a_run_is_in_progress(
    warehouse: Warehouse, semantics_data: Path, tmp_path: Path
) -> None:
    etl(warehouse, semantics_data)
    before = {args: warehouse.cli(*args) for args in READERS}
    assert all(result.exit_code == 0 for result in before.values())
    holder = hold_run(warehouse, "DELETE FROM songplays", "DELETE FROM etl_runs")
    try:
        for args in READERS:
            during = warehouse.cli(*args)
            assert during.exit_code == 0, (args, during.stderr)
            assert during.stdout == before[args].stdout, args
        report = warehouse.cli("report", "--out", str(tmp_path / "report.html"))
        assert report.exit_code == 0, report.stderr
    finally:
        release(holder)
    assert warehouse.query("SELECT COUNT(*) FROM songplays") == [(3,)]


def test_create_tables_leaves_a_run_alone_and_drop_takes_the_run_lock(
    warehouse: Warehouse,
) -> None:
    holder = hold_run(warehouse)
    try:
        assert warehouse.cli("create-tables").exit_code == 0  # nothing to create
        started = time.monotonic()
        busy = warehouse.cli("create-tables", "--drop")
        assert busy.exit_code == 1 and time.monotonic() - started < 10
        assert busy.stderr.startswith("error: another run is in progress")
        threading.Timer(1.0, release, [holder]).start()
        waited = warehouse.cli("create-tables", "--drop", "--wait", "30")
        assert waited.exit_code == 0, waited.stderr
    finally:
        release(holder)
    assert warehouse.query("SELECT COUNT(*) FROM etl_runs") == [(0,)]


CLI = "from sparkify.cli import main; main()"


def test_create_tables_and_a_first_run_started_together_both_succeed(
    new_warehouse: Callable[[], Warehouse], semantics_data: Path
) -> None:
    for _ in range(3):
        warehouse = new_warehouse()
        songs, logs = str(semantics_data / "song_data"), str(semantics_data / "log_data")
        commands = [
            ["create-tables", "--wait", "30"],
            ["etl", "--songs", songs, "--logs", logs, "--wait", "30"],
        ]
        started = [
            subprocess.Popen(
                [sys.executable, "-c", CLI, *args, *warehouse.cli_args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        for process in started:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
        assert warehouse.query("SELECT COUNT(*) FROM songplays") == [(3,)]

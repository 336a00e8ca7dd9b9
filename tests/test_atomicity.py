"""A run commits everything or nothing, even when it fails or is killed; runs don't overlap."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
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


def options(data: Path) -> EtlOptions:
    return EtlOptions(songs=str(data / "song_data"), logs=str(data / "log_data"))


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_between_steps_leaves_the_warehouse_as_before(
    warehouse: Warehouse, generated: Path, tmp_path: Path, step: str
) -> None:
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)

    def fail(current: str) -> None:
        if current == step:
            raise Injected(step)

    backend = warehouse.backend()
    backend.connect()
    try:
        with pytest.raises(Injected):
            run_etl(backend, options(data), fail_after=fail)
    finally:
        backend.close()
    assert state(warehouse) == before
    summary = etl(warehouse, data)  # the next run completes the work
    assert summary["files"]["new"] > 0
    assert all(check["passed"] for check in summary["checks"])


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import EtlOptions, run_etl

    overrides, songs, logs, step = eval(sys.argv[1]), *sys.argv[2:5]

    def die(current):
        if current == step:
            os.kill(os.getpid(), signal.SIGKILL)

    backend = open_backend(load_settings(overrides=overrides, environ={}))
    backend.connect()
    run_etl(backend, EtlOptions(songs=songs, logs=logs), fail_after=die)
    """
)


@pytest.mark.parametrize("step", ["bulk_load", "stage", "upsert_songplays", "refresh_time"])
def test_a_killed_run_leaves_the_warehouse_as_before(
    warehouse: Warehouse, generated: Path, tmp_path: Path, step: str
) -> None:
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)
    args = [repr(warehouse.overrides), str(data / "song_data"), str(data / "log_data"), step]
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert state(warehouse) == before
    summary = etl(warehouse, data)
    assert summary["files"]["new"] > 0
    assert all(check["passed"] for check in summary["checks"])


HOLDER = textwrap.dedent(
    """
    import sys
    from sparkify.backends import open_backend
    from sparkify.config import load_settings

    backend = open_backend(load_settings(overrides=eval(sys.argv[1]), environ={}))
    backend.connect()
    with backend.transaction():
        backend.lock_run()
        print("holding", flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture
def lock_holder(warehouse: Warehouse):  # type: ignore[no-untyped-def]
    """Another process in the middle of a run, until the test closes its stdin."""
    etl_ready = warehouse.cli("create-tables")
    assert etl_ready.exit_code == 0, etl_ready.stderr
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, repr(warehouse.overrides)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    yield holder
    if holder.poll() is None:
        holder.kill()
    holder.wait()


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

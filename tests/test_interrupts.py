"""A run stopped from outside (Ctrl-C, SIGTERM, SIGKILL) leaves no process, no scratch file
and no traceback behind, and the warehouse as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Warehouse, etl
from test_atomicity import builds, half_loaded, state

from sparkify.staging import ROW_FORMATS

# Runs a load in worker processes (even for little data), and at the step named by argv[4]
# prints the workers' process ids and the scratch folder, then calls ``stop``.
RUNNER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, time
    import sparkify.parsing
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import EtlOptions, run_etl

    sparkify.parsing.PARALLEL_PARSE_BYTES = 0
    overrides, songs, logs, step, how, mode = eval(sys.argv[1]), *sys.argv[2:7]

    def stop(current):
        if current != step:
            return
        workers = [p.pid for p in multiprocessing.active_children()]
        print(*workers, flush=True)
        os.kill(os.getpid(), getattr(signal, how))
        time.sleep(60)

    backend = open_backend(load_settings(overrides=overrides, environ={}))
    backend.connect()
    options = EtlOptions(songs=songs, logs=logs, full_refresh=mode == "full_refresh")
    run_etl(backend, options, fail_after=stop)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def run_and_stop(
    warehouse: Warehouse, data: Path, scratch: Path, step: str, how: str, mode: str = "incremental"
) -> subprocess.CompletedProcess[str]:
    args = [repr(warehouse.overrides), str(data / "song_data"), str(data / "log_data"), step, how]
    args.append(mode)
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        timeout=120,
    )


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_parse_workers_die_with_a_killed_run(
    warehouse: Warehouse, generated: Path, tmp_path: Path, how: str
) -> None:
    data = half_loaded(warehouse, generated, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    killed = run_and_stop(warehouse, data, scratch, "bulk_load", how)
    assert killed.returncode == -getattr(signal, how), killed.stderr
    workers = [int(pid) for pid in killed.stdout.split()]
    assert workers, "the run had no worker processes"
    try:
        assert wait_until_gone(workers) == []
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_runs_scratch_files_are_removed_by_the_next_run(
    warehouse: Warehouse,
    generated: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = half_loaded(warehouse, generated, tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    killed = run_and_stop(warehouse, data, scratch, "bulk_load", "SIGKILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [left] = scratch.iterdir()  # where the user can find it: $TMPDIR/sparkify-<pid>-...
    assert left.name.startswith(f"sparkify-{left.name.split('-')[1]}-")
    assert any(any(left.rglob(f"*.{row_format}")) for row_format in ROW_FORMATS)
    wait_until_gone([int(left.name.split("-")[1])])
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    summary = etl(warehouse, data)
    assert summary["files"]["new"] > 0
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_rebuild_stopped_while_it_builds_leaves_the_old_tables_and_no_leftovers(
    warehouse: Warehouse,
    generated: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """A --full-refresh stopped while its transforms run on several connections (PostgreSQL:
    a rebuild, sparkify.rebuild): the old tables stay whole; the build schema it leaves
    behind, which nobody reads, goes with the next run, as its scratch folder does."""
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stopped = run_and_stop(warehouse, data, scratch, "upsert_songplays", how, "full_refresh")
    assert stopped.returncode == -getattr(signal, how), stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert state(warehouse) == before
    rebuilds = warehouse.backend().capabilities.parallel_build
    assert len(builds(warehouse)) == (1 if rebuilds else 0)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    summary = etl(warehouse, data)
    assert summary["files"]["new"] > 0
    assert all(check["passed"] for check in summary["checks"])
    assert builds(warehouse) == []
    assert list(scratch.iterdir()) == []


def test_a_running_runs_scratch_folder_is_left_alone(
    warehouse: Warehouse, semantics_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkify.parsing import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    with scratch_folder() as mine:
        (mine / "part.json").write_text("{}\n")
        etl(warehouse, semantics_data)
        assert (mine / "part.json").exists()
    assert list((tmp_path / "scratch").iterdir()) == []


# The CLI, with Ctrl-C pressed while DuckDB bulk-loads: the terminal sends SIGINT to every
# process of its foreground group, the parse workers included.
CTRL_C = textwrap.dedent(
    """
    import os, signal, sys, threading
    import sparkify.parsing
    from sparkify.backends.duckdb import DuckDBBackend
    from sparkify.cli import main

    sparkify.parsing.PARALLEL_PARSE_BYTES = 0
    load = DuckDBBackend.load_canonical

    def load_interrupted(self, table, paths):
        threading.Timer(0.2, os.killpg, (0, signal.SIGINT)).start()
        return load(self, table, list(paths) * 400)  # long enough to be interrupted

    DuckDBBackend.load_canonical = load_interrupted
    sys.argv = ["sparkify", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.parametrize(
    ("flags", "printed"),
    [((), "interrupted\n"), (("--json",), '{"error":"interrupted","exit_code":130}\n')],
)
def test_ctrl_c_during_a_load_prints_one_line_and_exits_130(
    warehouse: Warehouse,
    generated: Path,
    tmp_path: Path,
    flags: tuple[str, ...],
    printed: str,
) -> None:
    if warehouse.name != "duckdb":
        pytest.skip("the bulk load under test is DuckDB's")
    data = half_loaded(warehouse, generated, tmp_path)
    before = state(warehouse)
    args = ["etl", *flags, "--songs", str(data / "song_data"), "--logs", str(data / "log_data")]
    interrupted = subprocess.run(
        [sys.executable, "-c", CTRL_C, *args, *warehouse.cli_args],
        capture_output=True,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        timeout=120,
    )
    assert (interrupted.returncode, interrupted.stderr) == (130, printed)
    assert state(warehouse) == before
    summary = etl(warehouse, data)
    assert summary["files"]["new"] > 0

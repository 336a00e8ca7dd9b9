"""``sparkify etl --watch`` as a real process: files that land between ticks are loaded, one
run at a time, a failing run does not end the watch; SIGTERM stops it at once between runs and
after the current run during one; a second signal interrupts the run, which rolls back.

A run is held "in progress" deterministically by another process holding the run lock
(``lock_holder``): the watcher's run waits for it (``--wait``).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Warehouse, _duckdb_warehouse, dump, etl, run_cli
from datasets import copy_days, event_days, play, write_day
from moto_server import S3Bucket, upload_dataset
from test_atomicity import lock_holder  # noqa: F401  (a fixture)

from sparkify.errors import EXIT_USAGE
from sparkify.generator import GenerateOptions, generate

SPARKIFY = str(Path(sys.executable).parent / "sparkify")


class Watcher:
    """``sparkify etl --watch ARGS --json``, its runs read line by line as they come."""

    def __init__(self, warehouse: Warehouse, songs: str, logs: str, *args: str) -> None:
        command = [SPARKIFY, "etl", "--watch", "--json", *warehouse.cli_args, *args]
        paths = ["--songs", songs, "--logs", logs]
        self.process = subprocess.Popen(
            command + paths, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.runs: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self.stderr_seen: list[str] = []
        for stream, lines in ((self.process.stdout, self.runs), (self.process.stderr, self.stderr)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()

    def next_run(self, timeout: float = 60) -> dict[str, Any]:
        run: dict[str, Any] = json.loads(self.runs.get(timeout=timeout))
        return run

    def run_where(self, wanted: Any, timeout: float = 60) -> dict[str, Any]:
        """The next run for which ``wanted(run)`` holds (idle runs come in between)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.next_run(timeout=max(deadline - time.monotonic(), 0.01))
            if wanted(run):
                return run

    def wait_stderr(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.stderr_seen):
            self.stderr_seen.append(self.stderr.get(timeout=max(deadline - time.monotonic(), 0)))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def exit_code(self, within: float) -> int:
        """The exit code, which must come within ``within`` seconds."""
        return self.process.wait(timeout=within)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture
def watchers():  # type: ignore[no-untyped-def]
    """Starts watchers, killed at the end of the test if still running."""
    started: list[Watcher] = []

    def start(warehouse: Warehouse, songs: str, logs: str, *args: str) -> Watcher:
        started.append(Watcher(warehouse, songs, logs, *args))
        return started[-1]

    yield start
    for watcher in started:
        watcher.close()


@pytest.fixture
def watcher_of(warehouse: Warehouse, watchers: Any) -> Any:
    """Starts a watcher of local data into ``warehouse``."""
    return lambda data, *args: watchers(
        warehouse, str(data / "song_data"), str(data / "log_data"), *args
    )


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("days")
    generate(out, GenerateOptions(users=20, days=3, songs=60, seed=11, match_rate=0.5))
    return out


def loaded_at_once(new_warehouse: Callable[[], Warehouse], data: Path) -> dict[str, list[tuple]]:
    """The star tables of one plain ``etl`` of ``data`` into a new warehouse."""
    once = new_warehouse()
    etl(once, data)
    return dump(once)


def test_files_that_land_between_ticks_are_loaded_one_run_at_a_time(
    warehouse: Warehouse,
    new_warehouse: Callable[[], Warehouse],
    watcher_of: Any,
    days: Path,
    tmp_path: Path,
) -> None:
    first, second, third = event_days(days)
    watched = copy_days(days, tmp_path / "watched", [first])
    watcher = watcher_of(watched, "--interval", "0.3", "--max-errors", "0")
    run = watcher.next_run()
    songs = len(list((watched / "song_data").rglob("*.json")))
    assert (run["exit_code"], run["files"]["new"]) == (0, songs + 1)
    assert all(check["passed"] for check in run["checks"])

    copy_days(days, watched, [second])
    run = watcher.run_where(lambda r: r["files"]["new"] == 1)
    assert run["exit_code"] == 0 and "checks" in run

    bad = write_day(watched, [play(0, 1, 1, 0)], [b"{not json"])  # a day of 1970: its own file
    failed = watcher.run_where(lambda r: r["exit_code"] != 0)
    assert (failed["status"], failed["exit_code"]) == ("failed", 3)
    assert "more than --max-errors 0" in failed["error"]
    bad.unlink()  # the watch goes on, and the next runs are fine again
    copy_days(days, watched, [third])
    run = watcher.run_where(lambda r: r["files"]["new"] == 1)
    assert run["exit_code"] == 0

    idle = watcher.next_run()
    assert idle["files"]["new"] == idle["files"]["changed"] == 0 and "checks" not in idle
    watcher.signal()
    assert watcher.exit_code(within=10) == 0
    assert dump(warehouse) == loaded_at_once(new_warehouse, watched)


def test_files_landing_in_s3_are_loaded(
    s3_bucket: S3Bucket, watchers: Any, days: Path, tmp_path: Path
) -> None:
    first, second, _ = event_days(days)
    local = copy_days(days, tmp_path / "local", [first])
    upload_dataset(s3_bucket, local, ["song_data", "log_data"])
    warehouse = _duckdb_warehouse(tmp_path)
    songs, logs = s3_bucket.url("song_data"), s3_bucket.url("log_data")
    watcher = watchers(warehouse, songs, logs, "--interval", "0.3")
    assert watcher.next_run()["files"]["new"] > 1
    copy_days(days, local, [second])
    upload_dataset(s3_bucket, local, ["log_data"])  # day 1 again (same ETag), and day 2
    run = watcher.run_where(lambda r: r["files"]["new"] == 1)
    assert run["exit_code"] == 0 and run["files"]["changed"] == 0
    watcher.signal()
    assert watcher.exit_code(within=10) == 0
    once = _duckdb_warehouse(tmp_path)
    etl(once, local)
    assert dump(warehouse) == dump(once)


def asked_to_stop_during_a_run(watcher_of: Any, data: Path, signum: signal.Signals) -> Watcher:
    """A watcher whose first run waits for the run lock (held by ``lock_holder``), sent
    ``signum`` meanwhile."""
    watcher: Watcher = watcher_of(data, "--interval", "0.3", "--wait", "60")
    watcher.wait_stderr("watching")
    time.sleep(0.5)  # the first run is waiting for the run lock
    watcher.signal(signum)
    watcher.wait_stderr(f"{signum.name}: stopping after the current run")
    return watcher


def test_sigterm_during_a_run_stops_after_it(
    warehouse: Warehouse,
    new_warehouse: Callable[[], Warehouse],
    lock_holder: subprocess.Popen,  # noqa: F811
    watcher_of: Any,
    days: Path,
) -> None:
    watcher = asked_to_stop_during_a_run(watcher_of, days, signal.SIGTERM)
    assert lock_holder.stdin is not None
    lock_holder.stdin.close()  # the other run ends: this one goes ahead, to its end
    run = watcher.next_run()
    assert run["exit_code"] == 0 and run["files"]["new"] > 0
    assert watcher.exit_code(within=30) == 0
    assert watcher.runs.empty()  # no other run started
    assert dump(warehouse) == loaded_at_once(new_warehouse, days)


def test_a_second_signal_interrupts_the_run_and_it_rolls_back(
    warehouse: Warehouse,
    lock_holder: subprocess.Popen,  # noqa: F811
    watcher_of: Any,
    days: Path,
) -> None:
    watcher = asked_to_stop_during_a_run(watcher_of, days, signal.SIGINT)
    watcher.signal(signal.SIGTERM)
    assert watcher.exit_code(within=10) == 130
    watcher.wait_stderr("interrupted")
    assert "Traceback" not in "".join(watcher.stderr_seen)
    assert watcher.runs.empty()
    lock_holder.kill()
    lock_holder.wait()
    assert warehouse.query("SELECT COUNT(*) FROM etl_runs") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "5"], "--interval applies to --watch"),
        (["--watch", "--full-refresh"], "--full-refresh cannot be combined with --watch"),
        (["--watch", "--songs", "/nonexistent/songs"], "no such file or directory"),
    ],
)
def test_usage_errors_end_the_watch_at_once(
    tmp_path: Path, days: Path, args: list[str], message: str
) -> None:
    """Including a configuration error in the first run: a mistake in the command."""
    defaults = ["--songs", str(days / "song_data"), "--logs", str(days / "log_data")]
    result = run_cli("etl", "--database", str(tmp_path / "w.duckdb"), *defaults, *args)
    last = result.stderr.splitlines()[-1]
    assert (result.exit_code, last.startswith("error: ")) == (EXIT_USAGE, True)
    assert message in last

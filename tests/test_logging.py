"""Logging and machine-readable output: --log-level/--log-format on every command, progress
lines without a terminal, errors as JSON under --json, no secret in any log line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from conftest import run_cli
from psycopg.conninfo import make_conninfo

import sparkify
from sparkify.cli import cli
from sparkify.progress import progress_log
from sparkify.quality import CHECKS


def every_command(group: click.Group, path: str = "sparkify") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= every_command(command, f"{path} {name}")
        else:
            found[f"{path} {name}"] = command
    return found


def test_every_command_takes_log_level_and_log_format() -> None:
    commands = every_command(cli)
    assert {"sparkify etl", "sparkify check", "sparkify aws up", "sparkify generate"} <= set(
        commands
    )
    for path, command in commands.items():
        options = {opt for param in command.params for opt in param.opts}
        assert {"--log-level", "--log-format"} <= options, path


def sparkify_command(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess: stderr is a pipe, not a terminal (as under cron)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPARKIFY_")}
    return subprocess.run(
        [sys.executable, "-m", "sparkify", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def etl_of(data: Path) -> tuple[str, ...]:
    return ("etl", "--songs", str(data / "song_data"), "--logs", str(data / "log_data"))


def test_without_a_terminal_a_run_logs_its_progress_and_summary(
    generated: Path, tmp_path: Path
) -> None:
    load = etl_of(generated)
    done = sparkify_command(*load, "--database", "w.duckdb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    reading = [
        line for line in lines if " INFO sparkify.progress: Reading events (10 files)" in line
    ]
    assert len(reading) == 1 and reading[0].endswith(" rows/s")
    assert "10 files, " in reading[0] and " records, " in reading[0]
    assert any(" INFO sparkify.api: run 1 into duckdb:w.duckdb: " in line for line in lines)
    summary = done.stdout.splitlines()[0]
    assert f"{len(CHECKS)} quality checks ran, {len(CHECKS)} passed" in summary

    quiet = sparkify_command(*load, "--database", "q.duckdb", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_json_logs_carry_the_figures_as_fields(generated: Path, tmp_path: Path) -> None:
    done = sparkify_command(
        *etl_of(generated), "--database", "w.duckdb", "--log-format", "json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    progress = [r["progress"] for r in records if r["logger"] == "sparkify.progress"]
    events = next(p for p in progress if p["task"].startswith("Reading events"))
    assert events["files"] == 10 and events["state"] == "done"
    assert events["records"] > 0 and events["done"] == events["total"]
    assert events["rows_per_s"] > 0
    run = next(r for r in records if "run" in r)["run"]
    assert run["checks_ran"] == run["checks_passed"] == len(CHECKS)
    assert all(r["time"].endswith("Z") and r["level"] for r in records)


def test_the_level_comes_from_the_option_or_the_environment(tmp_path: Path) -> None:
    debug = sparkify_command(
        "create-tables", "--database", "w.duckdb", cwd=tmp_path, SPARKIFY_LOG_LEVEL="debug"
    )
    assert debug.returncode == 0 and " DEBUG sparkify." in debug.stderr
    warning = sparkify_command(
        "create-tables", "--database", "w.duckdb", "--log-level", "warning", cwd=tmp_path
    )
    assert " INFO " not in warning.stderr
    wrong = sparkify_command("check", cwd=tmp_path, SPARKIFY_LOG_LEVEL="loud")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("error: unknown log level 'loud'.")


def test_a_progress_line_at_a_steady_interval_while_work_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sparkify.progress")
    with progress_log(interval=0.05)(
        "Reading events (3 files)", total=3_000_000, unit="bytes"
    ) as step:
        for _ in range(3):
            time.sleep(0.12)
            step(1_000_000, files=1, records=1000)
    lines = [r.getMessage() for r in caplog.records if r.name == "sparkify.progress"]
    assert len(lines) >= 4  # a line every 0.05 s over 0.36 s, and the last one
    assert lines[-1].startswith("Reading events (3 files): 3 files, 3,000 records, 3.0 of 3.0 MB")
    assert lines[-1].endswith(" rows/s") and "(100%)" in lines[-1]
    states = [r.progress["state"] for r in caplog.records if r.name == "sparkify.progress"]
    assert states[-1] == "done" and set(states[:-1]) == {"running"}


def test_under_json_an_error_is_a_json_object_on_stderr(tmp_path: Path) -> None:
    unknown = run_cli("query", "top_song", "--json", "--database", str(tmp_path / "w.duckdb"))
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert json.loads(unknown.stderr) == {
        "error": "unknown query 'top_song'. Did you mean 'top_songs'?",
        "exit_code": 2,
    }
    data = tmp_path / "bad"
    sparkify.generate(data, users=30, days=2, songs=10, bad_records=0.1)
    rejected = sparkify_command(
        *etl_of(data), "--json", "--max-errors", "0", "--database", "w.duckdb", cwd=tmp_path
    )
    assert rejected.returncode == 3 and rejected.stdout == ""
    *logged, last = rejected.stderr.splitlines()
    error = json.loads(last)
    assert (
        error["exit_code"] == 3 and "records rejected, more than --max-errors 0" in error["error"]
    )
    assert all("logger" in json.loads(line) for line in logged)  # --json: JSON log lines too


def test_no_password_in_any_log_line(postgres_dsn: str, generated: Path, tmp_path: Path) -> None:
    secret = "s3cret-Pa55"  # the test server trusts local connections: the password is unused
    dsn = make_conninfo(postgres_dsn, password=secret)
    outputs = ""
    for log_format in ("text", "json"):
        done = sparkify_command(
            *etl_of(generated),
            "--backend",
            "postgres",
            "--dsn",
            dsn,
            "--schema",
            f"logs_{log_format}",
            "--log-level",
            "debug",
            "--log-format",
            log_format,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        outputs += done.stdout + done.stderr
    assert "connected to postgresql://" in outputs and "upsert_songplays: " in outputs
    assert secret not in outputs

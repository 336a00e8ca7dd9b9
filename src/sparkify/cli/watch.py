"""``sparkify etl --watch``: one run per tick, one line per run (one JSON object with --json)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
import orjson

from sparkify import quality
from sparkify.cli.common import WarehouseOptions, echo_line
from sparkify.errors import EXIT_OK, EXIT_QUALITY, EXIT_USAGE, SparkifyError
from sparkify.pipeline import EtlOptions, run_etl
from sparkify.watch import StopSignals, watch

DEFAULT_INTERVAL = 60.0


def watch_etl(
    options: WarehouseOptions, etl_options: EtlOptions, checks: bool, interval: float
) -> None:
    """Load new files every ``interval`` seconds until SIGINT or SIGTERM.

    A run that fails is reported and the next tick tries again, except a usage or
    configuration error (exit code 2) in the first run: that is a mistake in the command.
    """

    def run_once(tick: int) -> None:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            record = {"at": at, **_run(options, etl_options, checks)}
        except SparkifyError as error:
            if tick == 1 and error.exit_code == EXIT_USAGE:
                raise
            record = {"at": at, "status": "failed", "error": str(error)}
            record["exit_code"] = error.exit_code
        _print(options, record, checks)

    def say(message: str) -> None:
        if not options.quiet:
            echo_line(message, err=True)

    with StopSignals(say) as stop:
        say(
            f"watching {etl_options.songs} and {etl_options.logs} every {interval:g} s "
            "(Ctrl-C or SIGTERM stops after the current run)"
        )
        watch(run_once, interval, stop)
    say("stopped")


def _run(options: WarehouseOptions, etl_options: EtlOptions, checks: bool) -> dict[str, Any]:
    """One run: the fields of ``etl --json``, the checks when the run loaded files, and the
    exit code the same ``sparkify etl`` would give."""
    with options.warehouse().session(wait_seconds=etl_options.wait_seconds) as backend:
        summary = run_etl(backend, etl_options)
        loaded = summary.files_new + summary.files_changed
        results = quality.run_checks(backend) if checks and loaded else None
    record: dict[str, Any] = {**summary.as_dict(), "exit_code": EXIT_OK}
    if results is not None:
        record["checks"] = results.as_list()
        if not results.ok:
            record["exit_code"] = EXIT_QUALITY
    return record


def _print(options: WarehouseOptions, record: dict[str, Any], checks: bool) -> None:
    if options.quiet and record["exit_code"] == EXIT_OK:
        return
    if options.json:
        click.echo(orjson.dumps(record).decode())
        return
    if record["status"] == "failed":
        reason = str(record["error"]).splitlines()[0]
        echo_line(f"{record['at']} run failed (exit {record['exit_code']}): {reason}")
        return
    files, results = record["files"], record.get("checks")
    if results is not None:
        verdict = f"{sum(r['passed'] for r in results)}/{len(results)} checks passed"
    else:
        verdict = "no checks (nothing loaded)" if checks else "checks off"
    echo_line(
        f"{record['at']} run {record['run_id']}: {files['new']} new, {files['changed']} "
        f"changed, {files['skipped']} unchanged files; {record['lines_read']:,} records read, "
        f"{record['rows_staged']:,} staged, {record['rows_rejected']:,} rejected; {verdict}; "
        f"{record['seconds']:.2f} s"
    )

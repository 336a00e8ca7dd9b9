"""Measured work that runs in its own process, so start-up and memory are its own.

Usage: ``python child.py OPERATION JSON_SPEC``; prints one JSON object on stdout. Timings are
taken inside the process and exclude interpreter start-up and imports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _rusage() -> dict[str, int]:
    """Peak resident set of this process and of its largest finished child, in bytes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"max_rss_self": own, "max_rss_children": children}


def _server_pid(backend: Any) -> int | None:
    """The process id of the PostgreSQL server (its postmaster) serving ``backend``, if it
    runs on this machine (a server elsewhere, or in a container, has ids this /proc does not
    show)."""
    if backend.name != "postgres":
        return None
    pid = int(backend.query("SELECT pg_backend_pid()").scalar())
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
        return int(_stat(pid)[1])  # its parent: the postmaster
    except (OSError, IndexError, ValueError):
        return None


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after "(comm)": state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _server_cpu(postmaster: int) -> float:
    """CPU time so far of the whole server: its processes that have ended (the postmaster's
    cutime and cstime: a rebuild's other connections) and those alive (utime and stime), the
    background processes included."""
    fields = _stat(postmaster)
    ticks = int(fields[13]) + int(fields[14])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(entry.name)
                if int(child[1]) == postmaster:
                    ticks += int(child[11]) + int(child[12])
            except (OSError, IndexError, ValueError):
                continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(server_pid: int | None) -> dict[str, float]:
    """CPU time so far of this process (with DuckDB's threads), of its finished children
    and of the PostgreSQL server serving it (``_server_pid``). The parse workers count once
    they have exited, so their CPU falls in the step that ends with their pool: ``parse``."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "main": own.ru_utime + own.ru_stime,
        "workers": children.ru_utime + children.ru_stime,
    }
    if server_pid is not None:
        with contextlib.suppress(OSError, IndexError, ValueError):
            cpu["server"] = _server_cpu(server_pid)
    return cpu


def etl(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``run_etl`` (plus the quality checks when asked), with the time and the CPU time of
    each process per pipeline step."""
    from sparkify import quality
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import EtlOptions, run_etl

    overrides = {tuple(k.split(".")): v for k, v in spec["settings"].items()}
    until = dt.date.fromisoformat(spec["until"]) if spec.get("until") else None
    options = EtlOptions(songs=spec["songs"], logs=spec["logs"], until=until)
    started = time.perf_counter()
    backend = open_backend(load_settings(overrides=overrides, environ={}))
    backend.connect()
    server_pid = _server_pid(backend)
    marks = [("start", started, _cpu_seconds(server_pid))]

    def mark(step: str) -> None:
        marks.append((step, time.perf_counter(), _cpu_seconds(server_pid)))

    try:
        summary = run_etl(backend, options, fail_after=mark)
        mark("finish")
        passed = None
        if spec.get("checks"):
            results = quality.run_checks(backend)
            passed = results.ok
            mark("checks")
    finally:
        backend.close()
    phases: dict[str, float] = {}  # a step reached several times (bulk_load): the sum
    phase_cpu: dict[str, dict[str, float]] = {}
    for (_, before, cpu_before), (step, after, cpu_after) in itertools.pairwise(marks):
        phases[step] = round(phases.get(step, 0.0) + after - before, 4)
        spent = phase_cpu.setdefault(step, {})
        for process, seconds in cpu_after.items():
            used = seconds - cpu_before.get(process, seconds)
            spent[process] = round(spent.get(process, 0.0) + used, 3)
    return {
        "seconds": marks[-1][1] - started,
        "phases": phases,
        "phase_cpu": phase_cpu,
        "summary": summary.as_dict(),
        "checks_passed": passed,
        **_rusage(),
    }


def duckdb_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """DuckDB reading the same event files with no validation: ``count(*)`` or a bare CTAS."""
    import duckdb

    con = duckdb.connect(spec["database"])
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    source = "read_json($files, format = 'newline_delimited')"
    if spec["mode"] == "count":
        rows = con.execute(f"SELECT count(*) FROM {source}", {"files": spec["files"]}).fetchone()
    else:
        con.execute(f"CREATE TABLE floor AS SELECT * FROM {source}", {"files": spec["files"]})
        rows = con.execute("SELECT count(*) FROM floor").fetchone()
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds, "rows": rows[0] if rows else 0, **_rusage()}


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """``sparkify.generate`` with ``spec["workers"]`` simulating processes: its summary and
    the CPU time of this process and its (finished) worker processes."""
    from sparkify.generator import GenerateOptions
    from sparkify.generator import generate as write_dataset

    options = GenerateOptions(**spec["options"], start=dt.date.fromisoformat(spec["start"]))
    summary = write_dataset(Path(spec["out"]), options, workers=spec["workers"])
    cpu = _cpu_seconds(None)
    return {"summary": summary.as_dict(), "cpu_seconds": cpu["main"] + cpu["workers"]}


OPERATIONS = {"etl": etl, "duckdb_floor": duckdb_floor, "generate": generate}

if __name__ == "__main__":
    operation, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(OPERATIONS[operation](json.loads(raw))))

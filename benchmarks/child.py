"""Measured work that runs in its own process, so start-up and memory are its own.

Usage: ``python child.py OPERATION JSON_SPEC``; prints one JSON object on stdout. Timings are
taken inside the process and exclude interpreter start-up and imports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import resource
import sys
import time
from typing import Any


def _rusage() -> dict[str, int]:
    """Peak resident set of this process and of its largest finished child, in bytes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"max_rss_self": own, "max_rss_children": children}


def etl(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``run_etl`` (plus the quality checks when asked), with a time per pipeline step."""
    from sparkify import quality
    from sparkify.backends import open_backend
    from sparkify.config import load_settings
    from sparkify.pipeline import EtlOptions, run_etl

    overrides = {tuple(k.split(".")): v for k, v in spec["settings"].items()}
    until = dt.date.fromisoformat(spec["until"]) if spec.get("until") else None
    options = EtlOptions(songs=spec["songs"], logs=spec["logs"], until=until)
    started = time.perf_counter()
    marks: list[tuple[str, float]] = [("start", started)]
    backend = open_backend(load_settings(overrides=overrides, environ={}))
    backend.connect()
    try:
        summary = run_etl(
            backend, options, fail_after=lambda s: marks.append((s, time.perf_counter()))
        )
        marks.append(("finish", time.perf_counter()))
        passed = None
        if spec.get("checks"):
            results = quality.run_checks(backend)
            passed = not quality.failed(results)
            marks.append(("checks", time.perf_counter()))
    finally:
        backend.close()
    phases: dict[str, float] = {}  # a step reached several times (bulk_load): the sum
    for (_, before), (step, after) in itertools.pairwise(marks):
        phases[step] = round(phases.get(step, 0.0) + after - before, 4)
    return {
        "seconds": marks[-1][1] - started,
        "phases": phases,
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


OPERATIONS = {"etl": etl, "duckdb_floor": duckdb_floor}

if __name__ == "__main__":
    operation, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(OPERATIONS[operation](json.loads(raw))))

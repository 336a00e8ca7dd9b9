"""The example DAG (examples/airflow/sparkify_daily.py), run by Airflow's own ``dag.test()``
against DuckDB, and the operators' mapping of exit codes to retry or fail.

Airflow is not a dependency of sparkify: `.ci/run` installs it in its own virtual
environment (.ci-airflow/) and runs this file there. Airflow reads AIRFLOW_HOME when it is
imported, so every Airflow call runs in a subprocess with its own home and metadata database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sparkify
from sparkify.quality import CHECKS

if importlib.util.find_spec("airflow") is None:
    pytest.skip(
        "Airflow is not installed here; .ci/run runs this test in .ci-airflow/ "
        "(python3 -m venv .ci-airflow && .ci-airflow/bin/pip install apache-airflow pytest -e . "
        "&& .ci-airflow/bin/pytest --noconftest tests/test_airflow.py)",
        allow_module_level=True,
    )

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "airflow"

RUN_DAG = """
import json, sys
import pendulum
sys.path.insert(0, {folder!r})
from sparkify_daily import dag
run = dag.test(logical_date=pendulum.parse({logical_date!r}), run_conf={conf!r})
states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
print("RESULT " + json.dumps({{"state": str(run.state), "tasks": states}}))
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated metadata database, shared by this file's tests."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    }
    airflow = Path(sys.executable).with_name("airflow")
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env


def run_dag(
    env: dict[str, str], data: Path, warehouse: Path, logical_date: str, **conf: object
) -> tuple[dict, str]:
    """One ``dag.test()`` run of the example DAG; returns the states and the whole log."""
    settings = {
        "SPARKIFY_WAREHOUSE_PATH": str(warehouse),
        "SPARKIFY_S3_SONG_DATA": str(data / "song_data"),
        "SPARKIFY_S3_LOG_DATA": str(data / "log_data"),
    }
    script = RUN_DAG.format(folder=str(EXAMPLES), logical_date=logical_date, conf=conf)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, log[-5000:]
    return json.loads(lines[-1].removeprefix("RESULT ")), log


def event_files(warehouse: Path) -> list[str]:
    rows = sparkify.connect(database=warehouse).query(
        "SELECT url FROM etl_files WHERE kind = 'events' ORDER BY url"
    )
    return [Path(row["url"]).name for row in rows]


def test_each_run_loads_its_days_logs_and_a_rerun_changes_nothing(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sparkify.generate(data, users=50, days=3, songs=30)
    warehouse = tmp_path / "warehouse.duckdb"
    report = tmp_path / "report.html"

    # The run of 2018-11-03 covers [11-02, 11-03): the day file of 2018-11-02 only.
    run, log = run_dag(airflow_home, data, warehouse, "2018-11-03", report=str(report))
    assert run == {
        "state": "success",
        "tasks": {"load_day": "success", "check": "success", "report": "success"},
    }
    assert event_files(warehouse) == ["2018-11-02-events.json"]
    assert f"{len(CHECKS)} quality checks ran, {len(CHECKS)} passed" in log
    assert report.stat().st_size > 10_000
    before = sparkify.connect(database=warehouse).query("SELECT COUNT(*) AS n FROM songplays")

    # A retried or re-triggered run of the same day is safe: nothing new, nothing changes.
    again, log = run_dag(airflow_home, data, warehouse, "2018-11-03", report=str(report))
    assert again["state"] == "success"
    assert "0 new, 0 changed, 31 unchanged files" in log
    assert (
        sparkify.connect(database=warehouse).query("SELECT COUNT(*) AS n FROM songplays") == before
    )

    # The day before, run later (a backfill), adds its own file.
    run_dag(airflow_home, data, warehouse, "2018-11-02", report=str(report))
    assert event_files(warehouse) == ["2018-11-01-events.json", "2018-11-02-events.json"]

    # Failed quality checks fail the check task at once, and the report is not refreshed.
    with (
        sparkify.connect(database=warehouse) as loaded,
        loaded.session() as backend,
        backend.transaction(),  # DuckDB writes only inside one
    ):
        # a play whose time row is gone
        backend.execute("DELETE FROM time WHERE start_time = (SELECT MAX(start_time) FROM time)")
    failed, log = run_dag(airflow_home, data, warehouse, "2018-11-02", report=str(report))
    assert failed["tasks"] == {
        "load_day": "success",
        "check": "failed",
        "report": "upstream_failed",
    }
    assert (
        "sparkify check failed (exit code 4): 1 data-quality check(s) failed: songplays_time" in log
    )


def test_too_many_rejects_fail_the_task_at_once_with_the_reason_in_the_log(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sparkify.generate(data, users=20, days=2, songs=30, bad_records=0.1)
    warehouse = tmp_path / "warehouse.duckdb"

    run, log = run_dag(airflow_home, data, warehouse, "2018-11-02", max_errors=0)

    assert run["state"] == "failed"
    assert run["tasks"]["load_day"] == "failed"  # not up_for_retry: a retry would fail again
    assert run["tasks"]["check"] == "upstream_failed"
    assert "sparkify etl failed (exit code 3):" in log
    assert "records rejected, more than --max-errors 0; the run was rolled back" in log
    assert "2018-11-01-events.json:" in log  # the first rejects, by file and line


OPERATOR = """
import sys
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sparkify.airflow import SparkifyEtlOperator
operator = SparkifyEtlOperator(task_id="load", database={database!r}, songs={songs!r},
                               logs={logs!r})
try:
    operator.execute({{}})
except AirflowFailException as error:
    print("OUTCOME FAIL", error)
except AirflowException as error:
    print("OUTCOME RETRY", error)
"""


def test_runtime_errors_are_retried_and_usage_errors_are_not(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sparkify.generate(data, users=5, days=1, songs=5)
    locked = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(locked)!r})
            print("locked", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        outcomes = {}
        for name, logs in (("busy", data / "log_data"), ("missing", tmp_path / "nowhere")):
            script = OPERATOR.format(
                database=str(locked if name == "busy" else tmp_path / "w.duckdb"),
                songs=str(data / "song_data"),
                logs=str(logs),
            )
            done = subprocess.run(
                [sys.executable, "-c", script],
                env=airflow_home,
                capture_output=True,
                text=True,
                timeout=300,
            )
            outcome = [line for line in done.stdout.splitlines() if line.startswith("OUTCOME ")]
            assert outcome, done.stdout + done.stderr
            outcomes[name] = outcome[0].removeprefix("OUTCOME ")
    finally:
        holder.communicate("")
    assert outcomes["busy"].startswith("RETRY ")  # the warehouse is held by another process
    assert outcomes["busy"].endswith("(exit code 1)")
    assert outcomes["missing"].startswith("FAIL ")  # exit code 2: the path is wrong
    assert outcomes["missing"].endswith("(exit code 2)")

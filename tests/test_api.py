"""The Python API (``sparkify.connect``, ``Warehouse``, ``sparkify.generate``): what it
returns on every backend, the errors it raises, and that ``import sparkify`` stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Warehouse, etl

import sparkify
from sparkify.errors import EXIT_QUALITY, EXIT_TOO_MANY_REJECTS, EXIT_USAGE
from sparkify.quality import CHECKS


def connect_to(warehouse: Warehouse) -> sparkify.Warehouse:
    """The fixture's warehouse through the public API, with the same settings as its CLI."""
    settings = warehouse.overrides
    return sparkify.connect(
        None,
        backend=settings[("WAREHOUSE", "BACKEND")],
        database=settings.get(("WAREHOUSE", "PATH")),
        dsn=settings.get(("WAREHOUSE", "DSN")),
        schema=settings.get(("WAREHOUSE", "SCHEMA")),
    )


def test_a_load_through_the_api_answers_like_the_command_line(
    warehouse: Warehouse, new_warehouse, generated: Path, tmp_path: Path
) -> None:
    with connect_to(warehouse) as api:
        run = api.etl(generated / "song_data", generated / "log_data")
        top = api.query("top_songs", limit=3)
        paid = api.query("SELECT COUNT(*) AS n FROM songplays WHERE level = :level", level="paid")
        checks = api.check()
        report = api.report(tmp_path / "report.html")

    other = new_warehouse()
    by_cli = etl(other, generated)
    assert run.as_dict() | {"run_id": 0, "seconds": 0, "warehouse": ""} == by_cli | {
        "run_id": 0,
        "seconds": 0,
        "warehouse": "",
    }
    assert run.checks is not None and (run.checks.ran, run.checks.passed) == (len(CHECKS),) * 2
    assert by_cli["checks_ran"] == by_cli["checks_passed"] == len(CHECKS)
    assert top.columns == ["title", "artist", "plays"] and 1 <= len(top) <= 3
    cli_top = json.loads(other.cli("query", "top_songs", "--limit", "3", "--json").stdout)
    assert top == cli_top
    assert paid == [{"n": other.query("SELECT COUNT(*) FROM songplays WHERE level = 'paid'")[0][0]}]
    n = len(CHECKS)
    assert checks.ok and checks.summary() == f"{n} quality checks ran, {n} passed"
    assert [o.name for o in checks][:2] == ["songplays_key", "users_key"]
    assert report.path == tmp_path / "report.html" and report.path.stat().st_size > 10_000


def test_rows_convert_to_pandas_and_arrow_with_the_column_order_kept(
    warehouse: Warehouse, generated: Path
) -> None:
    with connect_to(warehouse) as api:
        api.etl(generated / "song_data", generated / "log_data", checks=False)
        hours = api.query("plays_by_hour")
        none = api.query("SELECT user_id, level FROM users WHERE user_id IS NULL")
    frame = hours.df()
    assert list(frame.columns) == ["hour", "plays"]
    assert frame["plays"].sum() == sum(row["plays"] for row in hours)
    table = hours.arrow()
    assert table.column_names == ["hour", "plays"] and table.num_rows == len(hours)
    assert none == [] and none.columns == ["user_id", "level"]
    assert list(none.df().columns) == ["user_id", "level"] and none.arrow().num_rows == 0


def test_create_tables_and_rejects(warehouse: Warehouse, tmp_path: Path) -> None:
    data = tmp_path / "data"
    summary = sparkify.generate(data, users=50, days=2, songs=20, bad_records=0.1)
    assert summary.as_dict()["event_files"] == 2
    injected = sum(summary.bad_records.values())
    with connect_to(warehouse) as api:
        tables = api.create_tables()
        run = api.etl(data / "song_data", data / "log_data")
        rejects = api.rejects()
        of_run = api.rejects(run.run_id, limit=2)
        assert api.rejects(run.run_id + 1) == []
        assert api.create_tables(drop=True) == tables
        assert api.query("SELECT COUNT(*) AS n FROM songplays") == [{"n": 0}]
    assert {"songplays", "etl_runs", "etl_rejects"} <= set(tables)
    assert len(rejects) == run.rows_rejected == injected > 2
    assert rejects.columns == ["run_id", "file", "line_no", "reason", "raw"]
    assert of_run == rejects[:2]


def test_too_many_rejects_raise_with_exit_code_3_and_nothing_is_loaded(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sparkify.generate(data, users=20, days=2, songs=20, bad_records=0.05)
    api = connect_to(warehouse)
    with pytest.raises(sparkify.TooManyRejects, match="records rejected") as raised:
        api.etl(data / "song_data", data / "log_data", max_errors=0)
    assert raised.value.exit_code == EXIT_TOO_MANY_REJECTS
    assert api.query("SELECT COUNT(*) AS n FROM songplays") == [{"n": 0}]


def test_failed_checks_raise_with_exit_code_4_and_the_committed_run(
    warehouse: Warehouse, generated: Path
) -> None:
    api = connect_to(warehouse)
    api.etl(generated / "song_data", generated / "log_data")
    with api, api.session() as backend, backend.transaction():  # a play whose time row is gone
        backend.execute("DELETE FROM time WHERE start_time = (SELECT MAX(start_time) FROM time)")

    assert not api.check().ok
    with pytest.raises(sparkify.QualityCheckFailed, match="songplays_time \\(1 rows\\)") as raised:
        api.etl(generated / "song_data", generated / "log_data")
    assert raised.value.exit_code == EXIT_QUALITY
    run = raised.value.result
    assert isinstance(run, sparkify.RunResult) and run.status == "succeeded"
    assert run.checks is not None and [o.name for o in run.checks.failed] == ["songplays_time"]
    assert api.check().failed[0].failing_rows == 1


def test_usage_errors_raise_config_errors_with_exit_code_2(tmp_path: Path) -> None:
    api = sparkify.connect(database=tmp_path / "w.duckdb")
    cases = {
        "unknown query 'top_song'. Did you mean 'top_songs'?": lambda: api.query("top_song"),
        "query top_songs takes limit, since, until; got level": lambda: api.query(
            "top_songs", level=1
        ),
        "query recent_runs takes limit; got since": lambda: api.query(
            "recent_runs", since="2018-11-01"
        ),
        "until must be a date like 2018-11-01, got '2018-11-31'": lambda: api.report(
            until="2018-11-31"
        ),
        "since 2018-11-03 is after until 2018-11-02": lambda: api.report(
            since="2018-11-03", until="2018-11-02"
        ),
        "since must be a date like 2018-11-01, got 'nov 1'": lambda: api.etl(since="nov 1"),
        "since 2018-11-02 is after until 2018-11-01": lambda: api.etl(
            since="2018-11-02", until="2018-11-01"
        ),
        "users must be >= 1, got 0": lambda: sparkify.generate(tmp_path / "g", users=0),
        "unknown backend 'duckbd'. Did you mean 'duckdb'?": lambda: sparkify.connect(
            backend="duckbd"
        ),
        f"{tmp_path / 'file' / 'song_data'}: Not a directory": lambda: sparkify.generate(
            tmp_path / "file"
        ),
    }
    (tmp_path / "file").write_bytes(b"")
    for message, call in cases.items():
        with pytest.raises(sparkify.SparkifyError) as raised:
            call()
        assert raised.value.exit_code == EXIT_USAGE, message
        assert str(raised.value).startswith(message), str(raised.value)


def test_a_shared_connection_inside_with_and_none_held_outside(tmp_path: Path) -> None:
    """Outside ``with`` a DuckDB file is not kept open between calls, so another process can
    load it; inside, the calls share one connection (an in-memory database lives on)."""
    memory = sparkify.connect(database=":memory:")
    with memory:
        memory.create_tables()
        assert memory.query("SELECT COUNT(*) AS n FROM etl_runs") == [{"n": 0}]
    path = tmp_path / "w.duckdb"
    sparkify.connect(database=path).create_tables()
    other = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
        capture_output=True,
        text=True,
    )
    assert other.returncode == 0, other.stderr


def test_importing_sparkify_loads_no_driver_or_data_library() -> None:
    probe = (
        "import sys, sparkify\n"
        "heavy = {'duckdb', 'psycopg', 'boto3', 's3fs', 'matplotlib', 'jinja2', 'pandas',"
        " 'pyarrow', 'click', 'rich', 'airflow', 'sparkify.pipeline', 'sparkify.api'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
        "sparkify.connect\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    at_import, after_connect = done.stdout.splitlines()
    assert at_import == "[]"
    assert after_connect == "['sparkify.api', 'sparkify.pipeline']"


def test_the_public_names() -> None:
    assert set(sparkify.__all__) == {
        "__version__",
        "connect",
        "generate",
        "Warehouse",
        "RunResult",
        "Rows",
        "CheckResult",
        "CheckOutcome",
        "GenerateSummary",
        "SparkifyError",
        "ConfigError",
        "SourceError",
        "ConnectionFailed",
        "WarehouseError",
        "TransientWarehouseError",
        "RunInProgress",
        "TooManyRejects",
        "QualityCheckFailed",
    }
    for name in sparkify.__all__:
        assert getattr(sparkify, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sparkify.nope  # noqa: B018


def test_python_dash_m_sparkify_is_the_command(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "sparkify", "--version"], capture_output=True, text=True
    )
    assert (
        version.returncode == 0 and version.stdout == f"sparkify, version {sparkify.__version__}\n"
    )
    missing = subprocess.run(
        [sys.executable, "-m", "sparkify", "check", "--database", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == EXIT_USAGE
    assert missing.stderr.startswith("error: duckdb:") and "does not exist: load data first" in (
        missing.stderr
    )
    usage = subprocess.run(
        [sys.executable, "-m", "sparkify", "--help"], capture_output=True, text=True
    )
    assert usage.stdout.startswith("Usage: sparkify [OPTIONS] COMMAND [ARGS]...")

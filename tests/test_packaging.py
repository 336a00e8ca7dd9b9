"""The light install: the embedded DuckDB path works with no optional package importable, and
a command that needs one says which extra installs it (exit code 2, no traceback).

Each case runs the CLI in a fresh interpreter whose import system refuses the packages of the
extras (``BLOCKER``), as if they were not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify.errors import EXIT_USAGE
from sparkify.quality import CHECKS

# The top-level modules each extra brings, as pyproject.toml's extras install them.
EXTRA_MODULES = {
    "postgres": ("psycopg", "psycopg_binary", "psycopg_c"),
    "s3": ("s3fs", "fsspec", "aiobotocore", "aiohttp"),
    "aws": ("boto3", "botocore", "psycopg", "psycopg_binary", "psycopg_c"),
    "report": ("jinja2", "markupsafe", "matplotlib"),
    "boto3": ("boto3", "botocore"),  # the aws extra's own part (postgres installed)
}
ALL_OPTIONAL = tuple(sorted({m for modules in EXTRA_MODULES.values() for m in modules}))
CLASSIFY = "from sparkify.aws import classify; print(classify(RuntimeError('odd')).kind)"

BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

blocked = set(sys.argv[1].split(","))
already = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
assert not already, f"imported before the blocker: {already}"


class Blocker(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
code, sys.argv = sys.argv[2], ["sparkify", *sys.argv[3:]]
exec(code)
"""
CLI = "from sparkify.cli import main; main()"


def without(
    blocked: tuple[str, ...], *args: str, cwd: Path, code: str = CLI
) -> subprocess.CompletedProcess[str]:
    """``sparkify ARGS`` (or ``code``) in a new interpreter where the ``blocked`` packages
    cannot be imported, in ``cwd`` (no dwh.cfg) and without SPARKIFY_* settings (logging at
    warning: the lines compared are the errors)."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), code, *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "SPARKIFY_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def in_a_warehouse(tmp_path: Path) -> Path:
    """A folder holding ./sparkify.duckdb with its tables (reading commands need them)."""
    done = without(ALL_OPTIONAL, "create-tables", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_the_duckdb_path_needs_no_optional_package(generated: Path, tmp_path: Path) -> None:
    songs, logs = str(generated / "song_data"), str(generated / "log_data")

    def sparkify(*args: str) -> subprocess.CompletedProcess[str]:
        done = without(ALL_OPTIONAL, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done

    sparkify("create-tables")
    run = json.loads(sparkify("etl", "--songs", songs, "--logs", logs, "--json").stdout)
    assert run["status"] == "succeeded" and run["tables"]["songplays"] > 0
    assert all(check["passed"] for check in run["checks"])
    assert json.loads(sparkify("check", "--json").stdout)
    top = json.loads(sparkify("query", "top_songs", "--limit", "3", "--json").stdout)
    assert len(top) == 3
    sparkify("rejects")
    assert "CREATE TABLE" in sparkify("sql").stdout
    assert "report" in sparkify("--help").stdout  # every command is listed, even if it needs more

    demo = sparkify("demo", "--sample", str(generated))
    assert f"{len(CHECKS)} quality checks ran, {len(CHECKS)} passed" in demo.stdout
    assert "no report.html: the report needs jinja2: pip install 'sparkify[report]'" in demo.stderr
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("extra", "args", "message"),
    [
        (
            "postgres",
            ("create-tables", "--backend", "postgres", "--dsn", "postgresql://127.0.0.1:9/x"),
            "the postgres backend needs psycopg: pip install 'sparkify[postgres]'",
        ),
        (
            "aws",
            ("etl", "--backend", "redshift", "--songs", "s", "--logs", "l"),
            "the redshift backend needs psycopg: pip install 'sparkify[aws]'",
        ),
        ("aws", ("aws", "status"), "talking to AWS needs boto3: pip install 'sparkify[aws]'"),
        (
            "boto3",
            ("etl", "--backend", "redshift", "--songs", "s", "--logs", "l"),
            "the redshift backend needs boto3: pip install 'sparkify[aws]'",
        ),
        (
            "s3",
            ("etl", "--songs", "s3://bucket/song_data", "--logs", "s3://bucket/log_data"),
            "reading s3:// URLs needs fsspec: pip install 'sparkify[s3]'",
        ),
        ("report", ("report",), "the report needs jinja2: pip install 'sparkify[report]'"),
    ],
    ids=["postgres", "redshift", "aws-provisioning", "redshift-without-boto3", "s3", "report"],
)
def test_a_missing_extra_is_named_in_one_error_line(
    in_a_warehouse: Path, extra: str, args: tuple[str, ...], message: str
) -> None:
    done = without(EXTRA_MODULES[extra], *args, cwd=in_a_warehouse)
    assert (done.returncode, done.stderr) == (EXIT_USAGE, f"error: {message}\n")


def test_s3fs_alone_missing_names_the_s3_extra(tmp_path: Path) -> None:
    """fsspec installed by something else, s3fs not: the same advice."""
    done = without(
        ("s3fs",), "etl", "--songs", "s3://b/songs", "--logs", "s3://b/logs", cwd=tmp_path
    )
    assert (done.returncode, done.stderr) == (
        EXIT_USAGE,
        "error: reading s3:// URLs needs the s3fs package: pip install 'sparkify[s3]'\n",
    )


def test_matplotlib_missing_names_the_report_extra(in_a_warehouse: Path) -> None:
    done = without(("matplotlib",), "report", cwd=in_a_warehouse)
    assert (done.returncode, done.stderr) == (
        EXIT_USAGE,
        "error: the report needs matplotlib: pip install 'sparkify[report]'\n",
    )


def test_aws_errors_are_classified_without_the_s3_extra(tmp_path: Path) -> None:
    """boto3 installed (the aws extra) but not s3fs's aiohttp and fsspec."""
    done = without(EXTRA_MODULES["s3"], cwd=tmp_path, code=CLASSIFY)
    assert (done.returncode, done.stdout, done.stderr) == (0, "other\n", "")

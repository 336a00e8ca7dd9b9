"""The command line as users script it: help, exit codes, output formats, the demo."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from conftest import Warehouse, etl, run_cli
from datasets import NOV_1, play, song, write_day, write_song

from sparkify import __version__
from sparkify.analytics import QUERIES
from sparkify.cli import cli

COMMANDS = sorted(cli.commands)


def all_commands() -> list[tuple[str, click.Command]]:
    found = []
    for name, command in cli.commands.items():
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda v: str(v))
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    result = run_cli(*name.split(), "--help")
    assert result.exit_code == 0
    if not isinstance(command, click.Group):
        assert "Example" in result.stdout, f"sparkify {name} --help shows no example"


def test_the_contract_commands_exist() -> None:
    expected = {"init", "config", "create-tables", "etl", "query", "generate", "demo"}
    assert expected | {"check", "rejects", "sql"} <= set(COMMANDS)


@pytest.mark.parametrize(
    "command", ["create-tables", "etl", "query", "check", "rejects", "demo", "config"]
)
def test_warehouse_commands_share_the_same_options(command: str) -> None:
    names = {opt for p in cli.commands[command].params for opt in p.opts}
    assert {"--config", "--backend", "--database", "--dsn", "--quiet", "--json"} <= names


def test_version() -> None:
    result = run_cli("--version")
    assert result.stdout.strip() == f"sparkify, version {__version__}"


def test_usage_errors_exit_2() -> None:
    assert run_cli("etl", "--max-errors", "-1").exit_code == 2
    assert run_cli("no-such-command").exit_code == 2


def test_query_formats(warehouse: Warehouse, semantics_data: Path) -> None:
    etl(warehouse, semantics_data)
    as_json = json.loads(warehouse.cli("query", "free_vs_paid", "--json").stdout)
    assert [(r["level"], r["plays"]) for r in as_json] == [("free", 2), ("paid", 1)]
    as_csv = list(csv.reader(io.StringIO(warehouse.cli("query", "plays_by_hour", "--csv").stdout)))
    assert as_csv == [["hour", "plays"], ["10", "3"]]
    table = warehouse.cli("query", "top_songs")
    assert "Which songs are played most" in table.stdout
    custom = warehouse.cli("query", "--sql", "SELECT COUNT(*) AS n FROM users", "--json")
    assert json.loads(custom.stdout) == [{"n": 2}]


def test_query_errors(warehouse: Warehouse) -> None:
    result = warehouse.cli("query", "top_song")
    assert result.exit_code == 2
    assert result.stderr == "error: unknown query 'top_song'. Did you mean 'top_songs'?\n"
    assert warehouse.cli("query").exit_code == 2


def test_reading_an_empty_warehouse_says_to_load_first(warehouse: Warehouse) -> None:
    for command in (["query", "top_songs"], ["check"], ["report", "--out", "/dev/null"]):
        result = warehouse.cli(*command)
        assert result.exit_code == 2, command
        assert result.stderr.endswith(
            ": load data first (sparkify etl --songs PATH --logs PATH)\n"
        )  # a DuckDB file that does not exist is not created


def test_query_list_names_every_question() -> None:
    listed = json.loads(run_cli("query", "--list", "--json").stdout)
    assert [q["name"] for q in listed] == [q.name for q in QUERIES]
    assert all(q["question"].endswith((".", "?")) for q in listed)


def test_create_tables_is_idempotent_and_drop_recreates(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    assert warehouse.cli("create-tables").exit_code == 0
    etl(warehouse, semantics_data)
    assert warehouse.cli("create-tables").exit_code == 0
    assert warehouse.query("SELECT COUNT(*) FROM songplays") == [(3,)]
    dropped = json.loads(warehouse.cli("create-tables", "--drop", "--json").stdout)
    assert {"songplays", "users", "etl_files", "user_levels"} <= set(dropped["tables"])
    assert warehouse.query("SELECT COUNT(*) FROM songplays") == [(0,)]


@pytest.mark.parametrize("backend", ["duckdb", "postgres", "redshift"])
def test_sql_prints_every_statement_without_connecting(backend: str) -> None:
    result = run_cli("sql", "--backend", backend)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for table in ("songplays", "users", "songs", "artists", "time", "etl_files"):
        assert f"CREATE TABLE IF NOT EXISTS {table}" in text
    assert "DELETE FROM songplays\nWHERE songplay_id IN" in text
    assert text.count(";\n") > 30


def test_generate_is_deterministic_whatever_the_worker_processes(tmp_path: Path) -> None:
    args = ["--users", "20", "--days", "2", "--songs", "10", "--seed", "3", "--json"]
    first = run_cli("generate", "--out", str(tmp_path / "a"), *args, "--workers", "1")
    second = run_cli("generate", "--out", str(tmp_path / "b"), *args, "--workers", "2")
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["events"] > 0 and summary["song_files"] == 10
    assert (summary["workers"], json.loads(second.stdout)["workers"]) == (1, 2)
    assert 0 <= summary["catalogue_cpu_seconds"] <= summary["seconds"] * os.cpu_count()
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.json"))
    assert files_a == files_b
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a
    )
    assert json.loads(second.stdout)["events"] == summary["events"]


def test_demo_runs_from_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("demo", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["etl"]["tables"]["songplays"] > 1000
    assert all(check["passed"] for check in report["checks"])
    assert report["answers"]["top_songs"]
    assert (tmp_path / "sparkify.duckdb").exists()
    assert (tmp_path / "sample" / "song_data").is_dir()
    assert report["report"] == str(tmp_path / "report.html")
    assert "<svg" in (tmp_path / "report.html").read_text()
    again = json.loads(run_cli("demo", "--json").stdout)
    assert again["etl"]["files"]["new"] == 0  # the second demo reuses sample and warehouse


def test_a_path_that_cannot_be_used_is_one_line_with_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = run_cli("init", "--path", str(blocker / "dwh.cfg"))
    assert result.exit_code == 2
    assert result.stderr == f"error: {blocker / 'dwh.cfg'}: Not a directory\n"


def test_schema_is_refused_where_there_are_no_schemas(tmp_path: Path) -> None:
    result = run_cli(
        "query", "top_songs", "--database", str(tmp_path / "w.duckdb"), "--schema", "x"
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --schema applies to server backends")


def test_an_invalid_dsn_does_not_echo_any_part_of_it() -> None:
    result = run_cli(
        "create-tables", "--backend", "postgres", "--dsn", "postgresql://bob:s3cr%zz@db/x"
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: invalid DSN: expected postgresql://user@host:port/db or key=value pairs\n"
    )


def test_folder_links_are_followed_without_looping(warehouse: Warehouse, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_song(data, song("SO1", "A", "B", 1.0))
    write_day(data, [play(NOV_1, 1, 1, 0)])
    (data / "song_data" / "A" / "again").symlink_to(data / "song_data")
    summary = etl(warehouse, data)
    assert summary["files"]["new"] == 2


def test_json_and_csv_together_are_a_usage_error(warehouse: Warehouse) -> None:
    result = warehouse.cli("query", "top_songs", "--json", "--csv")
    assert result.exit_code == 2
    assert json.loads(result.stderr) == {  # under --json, the error is JSON too
        "error": "--json and --csv cannot be used together",
        "exit_code": 2,
    }


def test_a_report_that_cannot_be_written_names_the_requested_path(
    warehouse: Warehouse, semantics_data: Path, tmp_path: Path
) -> None:
    etl(warehouse, semantics_data)
    blocker = tmp_path / "afile"
    blocker.write_text("")
    for target, reason in (
        (tmp_path / "missing" / "deeper" / "r.html", "No such file or directory"),
        (blocker / "r.html", "Not a directory"),
    ):
        result = warehouse.cli("report", "--out", str(target))
        assert result.exit_code == 2
        assert result.stderr == f"error: cannot write the report to {target}: {reason}\n"
    assert not (tmp_path / "missing").exists()  # no folders made on the way


@pytest.fixture
def full_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KB file system for TMPDIR (needs the right to mount, as root in a container)."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield small
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_full_temporary_folder_is_named(
    warehouse: Warehouse, generated: Path, full_tmpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(full_tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    result = warehouse.cli(
        "etl", "--songs", str(generated / "song_data"), "--logs", str(generated / "log_data")
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no room for temporary files in {full_tmpdir}/")
    assert result.stderr.endswith(
        "(No space left on device); free space there or point TMPDIR to a folder with room\n"
    )
    assert warehouse.query("SELECT COUNT(*) FROM staging_events") == [(0,)]


@pytest.mark.parametrize("group", [[], ["aws"]], ids=["sparkify", "sparkify aws"])
def test_a_group_without_a_command_shows_its_help(group: list[str]) -> None:
    result = run_cli(*group)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr and "Commands:" in result.stderr
    assert len(result.stderr.splitlines()) > 5


def test_since_after_until_is_a_usage_error(warehouse: Warehouse, semantics_data: Path) -> None:
    result = warehouse.cli(
        "etl",
        "--songs",
        str(semantics_data / "song_data"),
        "--logs",
        str(semantics_data / "log_data"),
        "--since",
        "2018-11-15",
        "--until",
        "2018-11-01",
    )
    assert result.exit_code == 2
    assert result.stderr == "error: --since 2018-11-15 is after --until 2018-11-01\n"


def test_a_database_in_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    database = tmp_path / "missing" / "w.duckdb"
    result = run_cli("create-tables", "--database", str(database))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot create the DuckDB database {database}: "
        f"the folder {database.parent} does not exist\n"
    )
    assert not database.parent.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["etl", "--max-errors", "-1"], "error: Invalid value for '--max-errors': -1 is not in"),
        (["no-such-command"], "error: No such command 'no-such-command'."),
        (["query", "--bogus"], "error: No such option '--bogus'."),
        (["generate"], "error: Missing option '--out'."),
        (["query", "a", "b"], "error: Got unexpected extra argument (b)"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
    command = "" if args[0] == "no-such-command" else f" {args[0]}"
    assert result.stderr.endswith(f" (see cli{command} --help)\n")  # the test's program name


def test_engine_errors_of_several_lines_are_one_line(
    warehouse: Warehouse, semantics_data: Path
) -> None:
    etl(warehouse, semantics_data)
    result = warehouse.cli("query", "--sql", "SELECT * FROM nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.splitlines()) == 1


def test_overlapping_inputs_are_a_usage_error(warehouse: Warehouse, semantics_data: Path) -> None:
    data = semantics_data
    (data / "link").symlink_to(data)
    same = f"error: the song files and the event logs are read from the same place ({data})"
    inside = "error: the event logs ({}) are inside the folder of the song files ({})"
    for songs, logs, message in (
        (data, data, same),
        (data, data / "log_data", inside.format(data / "log_data", data)),
        (f"file://{data}/", data, same.replace(f"({data})", f"(file://{data}/)")),
        (data / "song_data", data / "link" / "song_data" / "A", None),
    ):
        result = warehouse.cli("etl", "--songs", str(songs), "--logs", str(logs))
        assert result.exit_code == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1
        if message:
            assert result.stderr.startswith(message)
        assert result.stderr.rstrip().endswith("give each its own folder")


@pytest.mark.parametrize(
    ("songs", "logs", "overlap"),
    [
        ("s3://b/data", "s3://b/data", True),
        ("s3://b/data/", "s3://b/data", True),
        ("s3://b/data", "s3://b/data/logs", True),
        ("s3://b/data/songs", "s3://b/data", True),
        ("s3://b/data", "s3://b/data2", False),
        ("s3://b/songs", "s3://c/songs", False),
        ("s3://b/x", "gs://b/x", False),
        ("s3://b/song_data", "s3://b/log_data", False),
    ],
)
def test_overlapping_object_store_prefixes(songs: str, logs: str, overlap: bool) -> None:
    from sparkify.config import overlapping_inputs

    assert (overlapping_inputs(songs, logs) is not None) == overlap


READING_COMMANDS = [
    ["query", "top_songs"],
    ["query", "--sql", "SELECT 1"],
    ["check"],
    ["rejects"],
    ["report", "--out", "/dev/null"],
]


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE users",
        "DELETE FROM songplays",
        "UPDATE users SET level = 'gold'",
        "CREATE TABLE intruder (a INTEGER)",
        "COMMIT; DROP TABLE users",
    ],
)
def test_query_sql_cannot_change_the_warehouse(
    warehouse: Warehouse, semantics_data: Path, sql: str
) -> None:
    etl(warehouse, semantics_data)
    before = {t: warehouse.query(f"SELECT COUNT(*) FROM {t}") for t in ("users", "songplays")}
    result = warehouse.cli("query", "--sql", sql)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "read-only" in result.stderr or sql.startswith("COMMIT")
    after = {t: warehouse.query(f"SELECT COUNT(*) FROM {t}") for t in ("users", "songplays")}
    assert after == before
    tables = warehouse.query("SELECT table_name FROM information_schema.tables")
    assert ("intruder",) not in tables


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_commands_create_no_database_file(tmp_path: Path, command: list[str]) -> None:
    database = tmp_path / "nope.duckdb"
    result = run_cli(*command, "--database", str(database))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: duckdb:{database} does not exist: load data first "
        "(sparkify etl --songs PATH --logs PATH)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_commands_create_no_schema(postgres_dsn: str, command: list[str]) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    result = run_cli(*command, "--backend", "postgres", "--dsn", postgres_dsn, "--schema", schema)
    assert result.exit_code in (0, 1, 2)
    warehouse = Warehouse(
        "postgres", [], {("WAREHOUSE", "BACKEND"): "postgres", ("WAREHOUSE", "DSN"): postgres_dsn}
    )
    found = warehouse.query(f"SELECT COUNT(*) FROM pg_namespace WHERE nspname = '{schema}'")
    assert found == [(0,)]

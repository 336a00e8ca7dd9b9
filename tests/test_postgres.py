"""The PostgreSQL backend on a real server: connections, secrets, schemas, the run lock,
COPY fidelity, error classification, and row-for-row parity with DuckDB."""

from __future__ import annotations

import datetime as dt
import io
import math
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import STAR_ORDER, Warehouse, dump, etl, run_cli
from datasets import DAY_MS, NOV_1, play, song, write_day, write_song
from hypothesis import given, settings
from hypothesis import strategies as st
from postgres_server import PASSWORD_ROLE, free_port
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.copy import Copy, FileWriter

from sparkify.backends import Backend, open_backend
from sparkify.backends.postgres import PostgresBackend, map_driver_error
from sparkify.config import load_settings
from sparkify.errors import (
    EXIT_USAGE,
    ConnectionFailed,
    TooManyRejects,
    TransientWarehouseError,
    WarehouseError,
)
from sparkify.pipeline import EtlOptions, ensure_tables, run_etl
from sparkify.plan import TRANSFORM_STEPS
from sparkify.staging import CANONICAL, PGCOPY_HEADER, PGCOPY_TRAILER, row_encoder
from sparkify.tables import TABLES

PASSWORD = "Corr3ct-Horse-Battery"
EPOCH, MS = dt.datetime(1970, 1, 1), dt.timedelta(milliseconds=1)


def pg_warehouse(dsn: str, schema: str | None = None) -> Warehouse:
    schema = schema or f"t_{uuid.uuid4().hex[:12]}"
    return Warehouse(
        "postgres",
        ["--backend", "postgres", "--dsn", dsn, "--schema", schema],
        {
            ("WAREHOUSE", "BACKEND"): "postgres",
            ("WAREHOUSE", "DSN"): dsn,
            ("WAREHOUSE", "SCHEMA"): schema,
        },
    )


def duck_warehouse(tmp_path: Path) -> Warehouse:
    path = str(tmp_path / f"w-{uuid.uuid4().hex[:8]}.duckdb")
    return Warehouse(
        "duckdb",
        ["--backend", "duckdb", "--database", path],
        {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path},
    )


def with_dsn(dsn: str, **changes: str) -> str:
    return make_conninfo(dsn, **changes)


def dsn_parts(dsn: str) -> dict[str, str]:
    return {key: str(value) for key, value in conninfo_to_dict(dsn).items()}


@pytest.fixture
def pg(postgres_dsn: str) -> Warehouse:
    return pg_warehouse(postgres_dsn)


@pytest.fixture(scope="module")
def password_dsn(postgres_dsn: str) -> str:
    """A DSN (without the password) for a role the server makes log in with a password."""
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PASSWORD_ROLE])
        verb = "ALTER" if exists.fetchone() else "CREATE"
        admin.execute(f"{verb} ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        database = sql.Identifier(dsn_parts(postgres_dsn)["dbname"])
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                database, sql.Identifier(PASSWORD_ROLE)
            )
        )
    dsn = with_dsn(postgres_dsn, user=PASSWORD_ROLE)
    try:
        psycopg.connect(dsn, password="not-the-password").close()
    except psycopg.OperationalError:
        return dsn
    pytest.skip("this server lets the role in without a password (pg_hba trust)")


def no_password_env(tmp_path: Path) -> dict[str, Any]:
    """An environment in which libpq finds no password of its own."""
    return {"PGPASSWORD": None, "PGPASSFILE": str(tmp_path / "no-pgpass")}


def cli_output(result: Any) -> str:
    return result.stdout + result.stderr


def write_cfg(tmp_path: Path, **cluster: str) -> Path:
    path = tmp_path / "dwh.cfg"
    lines = ["[WAREHOUSE]", "BACKEND = postgres", "[CLUSTER]"]
    lines += [f"{key.upper()} = {value}" for key, value in cluster.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cluster_cfg(tmp_path: Path, dsn: str) -> Path:
    parts = dsn_parts(dsn)
    return write_cfg(
        tmp_path,
        host=parts["host"],
        db_port=parts["port"],
        db_name=parts["dbname"],
        db_user=parts["user"],
    )


# -- connecting ---------------------------------------------------------------------------
def test_unreachable_server_names_host_port_database_and_user(postgres_dsn: str) -> None:
    port = free_port()
    dsn = with_dsn(postgres_dsn, port=str(port))
    result = run_cli("create-tables", "--backend", "postgres", "--dsn", dsn)
    assert result.exit_code == EXIT_USAGE
    parts = dsn_parts(postgres_dsn)
    assert result.stderr.startswith("error: cannot connect to PostgreSQL (")
    expected = (
        f"host {parts['host']}, port {port}, database {parts['dbname']}, user {parts['user']}"
    )
    assert expected in result.stderr


def test_unreachable_server_is_retried_but_a_refusal_is_not(postgres_dsn: str) -> None:
    class Counting(PostgresBackend):
        connect_backoff = 0.0
        attempts = 0

        def open_connection(self, params: dict[str, Any]) -> psycopg.Connection[Any]:
            type(self).attempts += 1
            return super().open_connection(params)

    for dsn, expected in (
        (with_dsn(postgres_dsn, port=str(free_port())), Counting.connect_attempts),
        (with_dsn(postgres_dsn, dbname="no_such_database"), 1),
    ):
        Counting.attempts = 0
        backend = Counting(pg_warehouse(dsn).settings())
        with pytest.raises(ConnectionFailed):
            backend.connect()
        assert Counting.attempts == expected


def test_missing_database_is_named(postgres_dsn: str) -> None:
    dsn = with_dsn(postgres_dsn, dbname="no_such_database")
    result = run_cli("check", "--backend", "postgres", "--dsn", dsn)
    assert result.exit_code == EXIT_USAGE
    assert "database no_such_database" in result.stderr
    assert 'database "no_such_database" does not exist' in result.stderr


def test_the_session_gets_work_mem_from_settings_and_no_jit(pg: Warehouse) -> None:
    with pg.backend() as backend:
        assert backend.query("SHOW work_mem").scalar() == "256MB"
        assert backend.query("SHOW jit").scalar() == "off"
    pg.overrides[("WAREHOUSE", "WORK_MEM")] = "64MB"
    with pg.backend() as backend:
        assert backend.query("SHOW work_mem").scalar() == "64MB"


def test_a_bad_work_mem_is_one_clear_error(pg: Warehouse) -> None:
    result = pg.cli("check", env={"SPARKIFY_WAREHOUSE_WORK_MEM": "lots"})
    assert result.exit_code == EXIT_USAGE
    assert "[WAREHOUSE] WORK_MEM" in result.stderr
    assert 'invalid value for parameter "work_mem": "lots"' in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_host_is_a_config_error(tmp_path: Path) -> None:
    env: dict[str, Any] = {"SPARKIFY_CLUSTER_HOST": None, "SPARKIFY_WAREHOUSE_DSN": None}
    result = run_cli(
        "check", "--backend", "postgres", "--config", str(write_cfg(tmp_path)), env=env
    )
    assert result.exit_code == EXIT_USAGE
    assert "missing [CLUSTER] HOST" in result.stderr


def test_wrong_password_fails_without_showing_it(password_dsn: str, tmp_path: Path) -> None:
    wrong = "Wr0ng-Secret-Value"
    env = {**no_password_env(tmp_path), "SPARKIFY_CLUSTER_DB_PASSWORD": wrong}
    result = run_cli("create-tables", "--config", str(cluster_cfg(tmp_path, password_dsn)), env=env)
    assert result.exit_code == EXIT_USAGE
    assert f"user {PASSWORD_ROLE}" in result.stderr
    assert "password authentication failed" in result.stderr
    assert wrong not in cli_output(result)
    in_dsn = run_cli(
        "create-tables", "--backend", "postgres", "--dsn", with_dsn(password_dsn, password=wrong)
    )
    assert in_dsn.exit_code == EXIT_USAGE
    assert wrong not in cli_output(in_dsn)


def test_password_from_environment_or_pgpass_connects_and_is_never_printed(
    password_dsn: str, tmp_path: Path
) -> None:
    cfg = str(cluster_cfg(tmp_path, password_dsn))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    parts = dsn_parts(password_dsn)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{parts['host']}:{parts['port']}:*:{PASSWORD_ROLE}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    for env in (
        {**no_password_env(tmp_path), "SPARKIFY_CLUSTER_DB_PASSWORD": PASSWORD},
        {**no_password_env(tmp_path), "PGPASSWORD": PASSWORD},
        {**no_password_env(tmp_path), "PGPASSFILE": str(pgpass)},
    ):
        result = run_cli("create-tables", "--config", cfg, "--schema", schema, env=env)
        assert result.exit_code == 0, result.stderr
        assert PASSWORD not in cli_output(result)
        for shown in (
            run_cli("config", "--config", cfg, env=env),
            run_cli("config", "--config", cfg, "--json", env=env),
        ):
            assert shown.exit_code == 0
            assert PASSWORD not in cli_output(shown)
    dsn = with_dsn(password_dsn, password=PASSWORD)
    shown = run_cli("config", "--backend", "postgres", "--dsn", dsn, "--json")
    assert PASSWORD not in cli_output(shown)
    assert PASSWORD not in PostgresBackend(pg_warehouse(dsn).settings()).describe()


def test_missing_password_is_a_config_error(password_dsn: str, tmp_path: Path) -> None:
    result = run_cli(
        "create-tables",
        "--backend",
        "postgres",
        "--dsn",
        password_dsn,
        env=no_password_env(tmp_path),
    )
    assert result.exit_code == EXIT_USAGE
    assert "asks for a password and none is set" in result.stderr
    assert f"user {PASSWORD_ROLE}" in result.stderr


# -- schema ---------------------------------------------------------------------------------
def test_tables_land_in_the_named_schema_even_one_needing_quotes(
    postgres_dsn: str, generated: Path
) -> None:
    schema = f'Odd "Schema" {uuid.uuid4().hex[:6]}'
    warehouse = pg_warehouse(postgres_dsn, schema)
    summary = etl(warehouse, generated, "--no-checks")
    with psycopg.connect(postgres_dsn) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
        plays = con.execute(
            sql.SQL("SELECT COUNT(*) FROM {}.songplays").format(sql.Identifier(schema))
        ).fetchone()
    assert {t for (t,) in tables} >= {*STAR_ORDER, "etl_files", "staging_events"}
    assert plays == (summary["tables"]["songplays"],)
    backend = warehouse.backend()
    backend.connect()
    try:
        assert backend.existing_tables() == {t for (t,) in tables}
    finally:
        backend.close()
    other = pg_warehouse(postgres_dsn).backend()
    other.connect()
    try:
        assert other.existing_tables() == set()
    finally:
        other.close()


# -- one run at a time -----------------------------------------------------------------------
@pytest.fixture
def lock_holder(pg: Warehouse) -> Iterator[PostgresBackend]:
    holder = pg.backend()
    assert isinstance(holder, PostgresBackend)
    holder.connect()
    ensure_tables(holder)
    holder.execute("BEGIN")
    holder.lock_run()
    yield holder
    holder.close()


def test_a_second_run_fails_while_the_first_holds_the_lock(
    pg: Warehouse, lock_holder: PostgresBackend, generated: Path
) -> None:
    logs = str(generated / "log_data")
    result = pg.cli("etl", "--songs", str(generated / "song_data"), "--logs", logs)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: another run is in progress on postgresql://")


def test_with_wait_a_second_run_waits_for_the_first(
    pg: Warehouse, lock_holder: PostgresBackend, generated: Path
) -> None:
    release = threading.Timer(0.6, lock_holder.execute, ["COMMIT"])
    started = time.monotonic()
    release.start()
    try:
        summary = etl(pg, generated, "--wait", "20", "--no-checks")
    finally:
        release.join()
    assert time.monotonic() - started >= 0.5
    assert summary["status"] == "succeeded"


def test_runs_starting_at_once_on_a_new_warehouse_all_create_its_tables(pg: Warehouse) -> None:
    """The tables are created outside the run's transaction, so two first runs may create
    the same table at once: PostgreSQL then refuses one CREATE ... IF NOT EXISTS (a
    duplicate pg_type row), which must not fail that run."""
    backends = [pg.backend() for _ in range(4)]
    for backend in backends:
        backend.connect()
    start, errors = threading.Barrier(len(backends)), []

    def create(backend: Backend) -> None:
        start.wait()
        try:
            ensure_tables(backend)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(b,)) for b in backends]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert backends[0].existing_tables() >= set(TABLES)
    finally:
        for backend in backends:
            backend.close()


def test_a_failed_run_does_not_wait_for_the_next_run_to_record_its_failure(
    pg: Warehouse, semantics_data: Path
) -> None:
    """When a run fails, the next run may take the lock before the failed one records
    itself in etl_runs: that record waits no longer than --wait, then the session's lock
    timeout is reset."""
    failing, following = pg.backend(), pg.backend()
    failing.connect(wait_seconds=0)
    following.connect(wait_seconds=30)
    locked, release = threading.Event(), threading.Event()

    def next_run() -> None:
        following.run("lock_wait", following.lock_params())
        with following.transaction():
            following.lock_run()  # waits until the failing run has rolled back
            locked.set()
            release.wait(30)

    runner = threading.Thread(target=next_run)

    def fail(step: str) -> None:
        if step == "ledger":
            runner.start()
            while not waiting_for_the_lock(pg.settings().get("WAREHOUSE", "DSN"), -1):
                time.sleep(0.05)
            raise TooManyRejects("injected")

    options = EtlOptions(str(semantics_data / "song_data"), str(semantics_data / "log_data"))
    try:
        started = time.monotonic()
        with pytest.raises(TooManyRejects):
            run_etl(failing, options, fail_after=fail)
        assert locked.wait(10)
        assert time.monotonic() - started < 10
        assert failing.query("SHOW lock_timeout").scalar() == "0"
    finally:
        release.set()
        runner.join(30)
        failing.close()
        following.close()


def waiting_for_the_lock(dsn: str, holder_pid: int) -> bool:
    """Whether a sparkify session other than the holder is trying to take the run lock."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        found = admin.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'sparkify' "
            "AND pid NOT IN (pg_backend_pid(), %s) AND query ILIKE '%%lock%%'",
            [holder_pid],
        ).fetchone()
    return bool(found and found[0])


def test_a_run_that_waited_for_the_lock_sees_the_first_runs_rows(
    postgres_dsn: str, generated: Path
) -> None:
    """At REPEATABLE READ a snapshot starts with the transaction's first query: a run that
    waited for the lock must not take its snapshot before it holds the lock, or it works
    from the warehouse as it was before the first run committed (stale ledger: duplicate
    file ids and rows)."""
    dsn = with_dsn(postgres_dsn, options=r"-c default_transaction_isolation=repeatable\ read")
    target, reference = pg_warehouse(dsn), pg_warehouse(postgres_dsn)
    options = EtlOptions(songs=str(generated / "song_data"), logs=str(generated / "log_data"))
    first, second = target.backend(), target.backend()
    first.connect()
    second.connect(wait_seconds=30)
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold(step: str) -> None:
        if step == "ledger":
            holding.set()
            release.wait(30)

    def run(name: str, backend: Backend, **kwargs: Any) -> None:
        try:
            outcome[name] = run_etl(backend, options, **kwargs)
        except Exception as exc:  # reported by the assertions below
            outcome[name] = exc

    runs = [threading.Thread(target=run, args=("first", first), kwargs={"fail_after": hold})]
    try:
        assert first.query("SHOW transaction_isolation").scalar() == "repeatable read"
        holder_pid = first.query("SELECT pg_backend_pid()").scalar()
        runs[0].start()
        assert holding.wait(60)
        runs.append(threading.Thread(target=run, args=("second", second)))
        runs[1].start()
        deadline = time.monotonic() + 20
        while not waiting_for_the_lock(postgres_dsn, holder_pid):
            assert time.monotonic() < deadline, "the second run never reached the lock"
            time.sleep(0.05)
        release.set()
        for thread in runs:
            thread.join(60)
    finally:
        release.set()
        first.close()
        second.close()
    assert not isinstance(outcome["first"], Exception), outcome["first"]
    assert not isinstance(outcome["second"], Exception), outcome["second"]
    assert outcome["second"].files_new == 0 and outcome["second"].run_id == 2
    etl(reference, generated)
    assert dump(target) == dump(reference)
    assert target.query("SELECT run_id, status FROM etl_runs ORDER BY run_id") == [
        (1, "succeeded"),
        (2, "succeeded"),
    ]


# -- COPY fidelity ---------------------------------------------------------------------------
TRICKY_TEXT = ['a,b "quoted"', "line\nbreak\r\n", "back\\slash \\N", "\\.", "Ça ΣΟΦΙΑ 日本\t"]


def tricky_rows() -> list[dict[str, Any]]:
    base = {
        "file_id": 1,
        "auth": "Logged In",
        "item_in_session": 0,
        "page": "NextSong",
        "session_id": 1,
        "registration": 1540919166796,
    }
    return [
        {
            **base,
            "line_no": 1,
            "ts": 1541106106796,
            "artist": "",
            "song": None,
            "length": 0.1 + 0.2,
        },
        {**base, "line_no": 2, "ts": 1541106106000, "artist": None, "song": "", "length": 1e-300},
        *(
            {**base, "line_no": 3 + i, "ts": NOV_1 + i, "artist": text, "song": text}
            for i, text in enumerate(TRICKY_TEXT)
        ),
    ]


def staged_file(backend: Backend, path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` of staging_events in the backend's row format, as a parse task writes them."""
    read, _ = CANONICAL["staging_events"]
    encode = row_encoder("staging_events", backend.capabilities.row_format)
    out = bytearray()
    for row in rows:
        encode([row.get(c) for c in read], out)
    path.write_bytes(out)
    return path


def staged(warehouse: Warehouse, path: Path) -> list[tuple]:
    backend = warehouse.backend()
    backend.connect()
    try:
        ensure_tables(backend)
        with backend.transaction():  # DuckDB writes only in one
            loaded = backend.load_canonical(
                "staging_events", [staged_file(backend, path, tricky_rows())]
            )
            assert loaded == 2 + len(TRICKY_TEXT)
            return backend.query("SELECT * FROM staging_events ORDER BY line_no").rows
    finally:
        backend.close()


def test_copy_keeps_null_apart_from_empty_text_and_milliseconds(
    pg: Warehouse, tmp_path: Path
) -> None:
    rows = staged(pg, tmp_path / "events.pgcopy")
    by_line = {row[1]: row for row in rows}
    artist, song, length, start_time = 2, 15, 8, 22
    assert (by_line[1][artist], by_line[1][song]) == ("", None)
    assert (by_line[2][artist], by_line[2][song]) == (None, "")
    assert by_line[1][start_time] == dt.datetime(2018, 11, 1, 21, 1, 46, 796000)
    assert by_line[1][length] == 0.1 + 0.2
    assert [by_line[3 + i][artist] for i in range(len(TRICKY_TEXT))] == TRICKY_TEXT
    assert rows == staged(duck_warehouse(tmp_path), tmp_path / "events.json")


def test_streamed_files_land_in_one_copy_and_a_failure_aborts_it(
    pg: Warehouse, tmp_path: Path
) -> None:
    backend = pg.backend()
    backend.connect()
    try:
        ensure_tables(backend)
        part = staged_file(backend, tmp_path / "part.pgcopy", tricky_rows())
        failing = pytest.raises(RuntimeError, match="parsing failed")
        with failing, backend.transaction(), backend.bulk_load("staging_events") as add:
            add(part)
            raise RuntimeError("parsing failed")
        assert backend.query("SELECT COUNT(*) FROM staging_events").rows == [(0,)]
        with backend.transaction(), backend.bulk_load("staging_events") as add:
            add(part)
            add(part)
        assert backend.query("SELECT COUNT(*) FROM staging_events").scalar() == 2 * (
            2 + len(TRICKY_TEXT)
        )
    finally:
        backend.close()


def test_a_row_postgres_refuses_fails_the_load(pg: Warehouse, tmp_path: Path) -> None:
    row = {"file_id": 1, "item_in_session": 0, "page": "NextSong", "session_id": 1, "ts": NOV_1}
    lines = [{**row, "line_no": n, "song": "x"} for n in range(1, 4)]
    lines[1]["song"] = "NUL \u0000 byte"  # DuckDB keeps it; PostgreSQL text cannot
    backend = pg.backend()
    backend.connect()
    try:
        ensure_tables(backend)
        canonical = staged_file(backend, tmp_path / "events.pgcopy", lines)
        with pytest.raises(WarehouseError, match="22021") as raised, backend.transaction():
            backend.load_canonical("staging_events", [canonical])
        assert not isinstance(raised.value, TransientWarehouseError)
        assert "COPY staging_events" in str(raised.value)
        assert backend.query("SELECT COUNT(*) FROM staging_events").rows == [(0,)]
    finally:
        backend.close()


# The SQL type of a staged column as psycopg names it, and values of it across its whole range.
PSYCOPG_TYPES = {
    "VARCHAR": "text",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "DOUBLE": "float8",
    "TIMESTAMP": "timestamp",
}
VALUES = {
    "VARCHAR": st.text()  # and texts of about 4096 bytes, where the encoder changes its ways
    | st.builds(
        str.__mul__, st.characters(codec="utf-8"), st.sampled_from([1024, 1365, 1366, 4095, 4096])
    ),
    "INTEGER": st.integers(-(2**31), 2**31 - 1),
    "BIGINT": st.integers(-(2**63), 2**63 - 1),
    "DOUBLE": st.floats() | st.integers(-(2**53), 2**53),  # an int in a DOUBLE column too
}
MS_OF_DATETIMES = st.integers(  # epoch milliseconds that a datetime can hold (years 1-9999)
    (dt.datetime.min - EPOCH) // MS, (dt.datetime.max - EPOCH) // MS
)


def staged_rows(table: str) -> st.SearchStrategy[tuple[str, list[dict[str, Any]]]]:
    """Rows of ``table`` as a parse task stages them, with NULLs anywhere."""
    read, derived = CANONICAL[table]
    sources = {d.source for d in derived.values()}
    columns = {
        name: st.none() | (MS_OF_DATETIMES if name in sources else VALUES[sql_type])
        for name, sql_type in read.items()
    }
    return st.tuples(st.just(table), st.lists(st.fixed_dictionaries(columns), min_size=1))


@pytest.fixture(scope="module")
def pg_cursor(postgres_dsn: str) -> Iterator[psycopg.Cursor[Any]]:
    with psycopg.connect(postgres_dsn) as connection:
        yield connection.cursor()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(CANONICAL)).flatmap(staged_rows))
def test_pgcopy_rows_are_the_bytes_psycopg_writes(
    pg_cursor: psycopg.Cursor[Any], table_rows: tuple[str, list[dict[str, Any]]]
) -> None:
    """sparkify's binary COPY encoder against psycopg's public ``Copy.write_row``: NULLs,
    every type's extremes, texts of any length, and the derived timestamp (int8 microseconds
    since 2000 on our side, a datetime on psycopg's)."""
    table, rows = table_rows
    read, derived = CANONICAL[table]
    ours = bytearray(PGCOPY_HEADER)
    encode = row_encoder(table, "pgcopy")
    for row in rows:
        encode([row[name] for name in read], ours)
    ours += PGCOPY_TRAILER

    theirs = io.BytesIO()
    with Copy(pg_cursor, binary=True, writer=FileWriter(theirs)) as copy:
        types = [*read.values(), *(d.sql_type for d in derived.values())]
        copy.set_types([PSYCOPG_TYPES[sql_type] for sql_type in types])
        for row in rows:
            times = [
                None if row[d.source] is None else EPOCH + row[d.source] * MS
                for d in derived.values()
            ]
            copy.write_row([*(row[name] for name in read), *times])
    assert bytes(ours) == theirs.getvalue()


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("08000", True),  # connection_exception
        ("08006", True),  # connection_failure
        ("40001", True),  # serialization_failure
        ("40P01", True),  # deadlock_detected
        ("57P01", True),  # admin_shutdown
        ("57P03", True),  # cannot_connect_now
        ("53300", True),  # too_many_connections
        ("22P02", False),  # invalid_text_representation
        ("23505", False),  # unique_violation
        ("42P01", False),  # undefined_table
        ("28P01", False),  # invalid_password
        ("57014", False),  # query_canceled
    ],
)
def test_driver_errors_are_classified_by_sqlstate(sqlstate: str, transient: bool) -> None:
    error = psycopg.errors.lookup(sqlstate)("the server's words")
    mapped = map_driver_error(error)
    assert isinstance(mapped, WarehouseError)
    assert isinstance(mapped, TransientWarehouseError) is transient
    assert sqlstate in str(mapped)
    assert "the server's words" in str(mapped)


def test_a_broken_connection_without_sqlstate_is_transient() -> None:
    assert isinstance(map_driver_error(psycopg.OperationalError("gone")), TransientWarehouseError)
    assert not isinstance(
        map_driver_error(psycopg.ProgrammingError("bad use")), TransientWarehouseError
    )


def test_statement_errors_carry_sqlstate_and_message(pg: Warehouse) -> None:
    result = pg.cli("query", "--sql", "SELECT * FROM no_such_table")
    assert result.exit_code == 1
    assert "42P01" in result.stderr
    assert 'relation "no_such_table" does not exist' in result.stderr


def test_a_killed_connection_is_a_transient_error(pg: Warehouse, postgres_dsn: str) -> None:
    backend = pg.backend()
    backend.connect()
    try:
        pid = backend.query("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(TransientWarehouseError):
            backend.query("SELECT 1")
        backend.rollback()  # nothing to roll back on a dead connection, and no new error
    finally:
        backend.close()


def test_sql_prints_the_copy_statements() -> None:
    result = run_cli("sql", "--backend", "postgres")
    assert result.exit_code == 0
    assert 'COPY "staging_events" ("file_id", "line_no",' in result.stdout
    assert "FROM STDIN WITH (FORMAT binary);" in result.stdout


# -- parity with DuckDB ----------------------------------------------------------------------
@pytest.fixture
def unicode_data(tmp_path: Path) -> Path:
    """Titles and names that only match after Unicode-aware case folding and trimming."""
    root = tmp_path / "unicode"
    titles = [
        ("SO1", "Ça Plane Pour Moi", "Plastic Bertrand", "\u00a0ÇA PLANE POUR MOI ", "PLASTIC"),
        ("SO2", "ΣΟΦΙΑ", "Ελένη", "σοφια\u3000", "ελένη"),
        ("SO3", "İstanbul", "Ünal", "ISTANBUL", "ünal"),
        ("SO4", "Tab", "Band", "tab\t", "band"),
    ]
    events = []
    for i, (song_id, title, artist, played, played_artist) in enumerate(titles):
        write_song(root, song(song_id, title, artist, 100.0 + i))
        played_artist = artist.upper() if played_artist == "PLASTIC" else played_artist
        events.append(play(NOV_1 + i * 1001, 1, 1, i, song=played, artist=played_artist))
    write_day(root, events)
    return root


def assert_same_rows(table: str, expected: list[tuple], actual: list[tuple]) -> None:
    assert len(actual) == len(expected), table
    for want, got in zip(expected, actual, strict=True):
        for a, b in zip(want, got, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                assert math.isclose(a, b, rel_tol=0, abs_tol=1e-9), (table, want, got)
            else:
                assert a == b, (table, want, got)


@pytest.mark.parametrize("dataset", ["generated", "sample_data", "unicode_data"])
def test_postgres_and_duckdb_build_identical_star_tables(
    dataset: str, request: pytest.FixtureRequest, postgres_dsn: str, tmp_path: Path
) -> None:
    data: Path = request.getfixturevalue(dataset)
    duck, pg = duck_warehouse(tmp_path), pg_warehouse(postgres_dsn)
    expected_summary, actual_summary = etl(duck, data), etl(pg, data)
    assert actual_summary["tables"] == expected_summary["tables"]
    expected, actual = dump(duck), dump(pg)
    for table in STAR_ORDER:
        assert_same_rows(table, expected[table], actual[table])
    assert sum(1 for row in actual["songplays"] if row[4] is not None) > 0


# -- an incremental run reads the new data, not the history ------------------------------
# What one run's transforms read of a table, counted by the run's own transaction: blocks of
# staging (read or found in the buffer cache); rows of user_events (each row the run writes
# fetches its block) and of time and its index (a full scan of time may be an index-only
# scan; its new rows' blocks are written, not read).
TRANSFORM_READS = (
    ("staging_events", "pg_stat_get_xact_blocks_fetched(CAST(:table AS regclass))"),
    ("user_events", "pg_stat_get_xact_tuples_returned(CAST(:table AS regclass)) + "
     "pg_stat_get_xact_tuples_fetched(CAST(:table AS regclass))"),
    ("time", "SUM(pg_stat_get_xact_tuples_returned(c.oid) + "
     "pg_stat_get_xact_tuples_fetched(c.oid)) FROM pg_class c WHERE c.oid = CAST(:table AS "
     "regclass) OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = CAST(:table AS "
     "regclass))"),
)  # fmt: skip


def transform_reads(warehouse: Warehouse, data: Path) -> dict:
    backend = warehouse.backend()
    backend.connect()
    counts: dict[str, list[int]] = {table: [] for table, _ in TRANSFORM_READS}

    def count(checkpoint: str) -> None:
        if checkpoint in ("ledger", TRANSFORM_STEPS[-1]):  # just before and after them
            for table, sql in TRANSFORM_READS:
                counts[table].append(int(backend.query(f"SELECT {sql}", {"table": table}).scalar()))

    options = EtlOptions(songs=str(data / "song_data"), logs=str(data / "log_data"))
    try:
        run_etl(backend, options, fail_after=count)
    finally:
        backend.close()
    return {table: after - before for table, (before, after) in counts.items()}


def a_month_of_plays(root: Path, days: int, users: int = 150, plays: int = 12) -> None:
    """A service's log: every day, each user plays a session; sessions are numbered as they
    start, and users change level now and then."""
    write_song(root, song("SO1", "Song One", "The Band", 200.0))
    tune = {"song": "Song One", "artist": "The Band", "length": 200.0}
    session = 0
    for day in range(days):
        events = []
        for user in range(1, users + 1):
            session += 1
            start = NOV_1 + day * DAY_MS + user * 60_000
            level = "paid" if (user + day // 7) % 3 == 0 else "free"
            events += [
                play(start + item * 1000, user, session, item, level=level, **tune)
                for item in range(plays)
            ]
        write_day(root, events)


def test_a_new_day_on_a_month_of_history_reads_the_new_days_blocks(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """With BRIN indexes standing in for Redshift's zone maps, the transforms of a run that
    adds one day to thirty read in proportion to that day: staging and user_events by
    ranges of sessions and start times (user_events also for the user agents and locations
    the day adds or takes away), time by the start times of the run's plays."""
    a_month_of_plays(tmp_path, days=31)
    pg = pg_warehouse(postgres_dsn)
    etl(pg, tmp_path, "--until", "2018-11-30")
    [(pages, events, times)] = pg.query(
        "SELECT pg_relation_size(CAST('staging_events' AS regclass)) / 8192, "
        "(SELECT COUNT(*) FROM user_events), (SELECT COUNT(*) FROM time)"
    )
    assert pages > 1000  # a month of history
    new_day = transform_reads(pg, tmp_path)
    assert new_day["staging_events"] < 0.15 * pages, (new_day, pages)
    # Seven statements read the new day's sessions (a full scan of user_events, one)
    assert new_day["user_events"] < 0.5 * events, (new_day, events)
    assert new_day["time"] < 0.15 * times, (new_day, times)
    at_once = duck_warehouse(tmp_path)
    etl(at_once, tmp_path)
    expected, actual = dump(at_once), dump(pg)
    for table in STAR_ORDER:
        assert_same_rows(table, expected[table], actual[table])


ZONE_MAP_INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
    "AND indexname LIKE '%zone_maps' ORDER BY indexname"
)


def test_an_older_warehouse_gets_the_zone_map_indexes_with_its_next_run(
    postgres_dsn: str, generated: Path
) -> None:
    """A warehouse made before the transforms read bound ranges has no BRIN indexes: the
    next run (or create-tables) makes them, with the data unchanged, and then leaves them."""
    pg = pg_warehouse(postgres_dsn)
    etl(pg, generated)
    indexes = pg.query(ZONE_MAP_INDEXES)
    assert indexes == [
        ("songplays_zone_maps",), ("staging_events_zone_maps",), ("user_events_zone_maps",)
    ]  # fmt: skip
    loaded = dump(pg)

    def drop_indexes() -> None:
        backend = pg.backend()
        backend.connect()
        try:
            for (index,) in indexes:
                backend.execute(f"DROP INDEX {index}")
        finally:
            backend.close()
        assert pg.query(ZONE_MAP_INDEXES) == []

    drop_indexes()
    summary = etl(pg, generated)
    assert summary["files"]["new"] == 0
    assert pg.query(ZONE_MAP_INDEXES) == indexes
    assert dump(pg) == loaded
    drop_indexes()
    assert pg.cli("create-tables").exit_code == 0
    assert pg.query(ZONE_MAP_INDEXES) == indexes


def test_unicode_titles_match_like_duckdb(postgres_dsn: str, unicode_data: Path) -> None:
    pg = pg_warehouse(postgres_dsn)
    etl(pg, unicode_data)
    assert pg.query("SELECT song_id FROM songplays ORDER BY songplay_id") == [
        ("SO1",),
        ("SO2",),
        (None,),  # default case folding keeps U+0130's dot: "i\u0307stanbul" != "istanbul"
        ("SO4",),  # trimming removes every Unicode space, the tab included
    ]


def test_settings_choose_cluster_values_and_default_schema(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, host="db.example", db_name="dwh", db_user="etl", db_port="6543")
    backend = open_backend(load_settings(cfg, environ={}))
    assert isinstance(backend, PostgresBackend)
    assert backend.describe() == "postgresql://etl@db.example:6543/dwh (schema public)"

"""The Redshift backend, without a cluster.

1. Every statement it can emit is rendered offline and parsed with sqlglot's Redshift dialect,
   then checked against the design: keys, explicit widths and precision, COPY through a
   manifest with the IAM role, no TRUNCATE, no secrets.
2. Staging to S3 and IAM credentials run against moto.
3. Everything but COPY from S3 and the Redshift-only DDL clauses runs live on the PostgreSQL
   test server: ``RedshiftOnPostgres`` plays COPY by reading the manifest back from moto and
   loading its rows with PostgreSQL's COPY, enforcing Redshift's byte widths.
4. With $SPARKIFY_REDSHIFT_TEST_DSN, the same run goes to a real cluster.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
import sqlglot
from conftest import SAMPLE_TABLES, Warehouse, dump, etl, run_cli
from datasets import NOV_1, play, song, write_day, write_song
from moto import mock_aws
from postgres_server import LoggedStatement, StatementLog
from recording import Recorder, facts, recorded_run
from sqlglot import exp

from sparkify import records
from sparkify.backends import REGISTRY, Backend
from sparkify.backends.base import Sent
from sparkify.backends.postgres import PostgresBackend
from sparkify.backends.redshift import (
    COPY_DERIVED,
    RedshiftBackend,
    StagedLoad,
    insert_batches,
    part_count,
)
from sparkify.config import load_settings
from sparkify.errors import ConfigError, RunInProgress, TransientWarehouseError, WarehouseError
from sparkify.generator import GenerateOptions, generate
from sparkify.pipeline import EtlOptions, ensure_tables, run_etl
from sparkify.plan import dry_run, expected_statements, walk
from sparkify.schema import TABLES, Statements
from sparkify.staging import KIND_TABLE, table_columns
from sparkify.tables import DECLARED

REGION = "us-east-1"
BUCKET = "sparkify-staging"
ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
PREFIX = f"s3://{BUCKET}/loads"
SECRET = "Do-Not-Leak-9"
LIVE_DSN = "SPARKIFY_REDSHIFT_TEST_DSN"
STAR = ("songplays", "users", "songs", "artists", "time")
DESIGN = {  # table: (DISTSTYLE, DISTKEY, SORTKEY columns)
    "songplays": ("KEY", "user_id", ["start_time"]),
    "users": ("KEY", "user_id", ["level"]),
    "songs": ("ALL", None, ["artist_id"]),
    "artists": ("ALL", None, ["artist_id"]),
    "time": ("KEY", "start_time", ["start_time"]),
    "user_levels": ("KEY", "user_id", ["user_id", "valid_from"]),
    "user_events": ("KEY", "session_id", ["start_time"]),
    "sessions": ("KEY", "session_id", ["start_time"]),
    "subscription_changes": ("ALL", None, ["change_time"]),
    "song_feedback": ("KEY", "session_id", ["feedback_time"]),
    "user_agents": ("ALL", None, ["user_agent"]),
    "locations": ("ALL", None, ["location"]),
    "staging_events": ("KEY", "session_id", ["session_id"]),
    "staging_songs": ("ALL", None, ["file_id"]),
    "etl_runs": ("ALL", None, ["run_id"]),
    "etl_files": ("ALL", None, ["file_id"]),
    "etl_rejects": ("EVEN", None, ["run_id"]),
    "etl_failed_rejects": ("EVEN", None, ["run_id"]),
}


OPAQUE = {"LOCK ETL_RUNS", "RESET STATEMENT_TIMEOUT"}


def settings(**extra: str) -> Any:
    values = {
        ("WAREHOUSE", "BACKEND"): "redshift",
        ("CLUSTER", "HOST"): "sparkify.abc123xyz.us-east-1.redshift.amazonaws.com",
        ("CLUSTER", "DB_USER"): "awsuser",
        ("CLUSTER", "DB_PASSWORD"): SECRET,
        ("IAM_ROLE", "ARN"): ROLE,
        ("S3", "STAGING_PREFIX"): PREFIX,
        ("AWS", "REGION"): REGION,
        ("AWS", "SECRET"): SECRET + "-aws",
        ("AWS", "KEY"): "AKIAEXAMPLE",
    }
    for key, value in extra.items():
        section, name = key.split("__")
        values[(section.upper(), name.upper())] = value
    return load_settings(overrides=values, environ={}, cwd=Path("/nonexistent"))


def every_statement() -> list[str]:
    """All the SQL the backend can send: the dry run, its own statements, a rendered COPY."""
    statements = RedshiftBackend.dialect_statements()
    found = [sql for _, sqls in dry_run(RedshiftBackend) for sql in sqls if "..." not in sql]
    found += [sql for name in statements.names() for sql in statements.get(name)]
    backend = RedshiftBackend(settings())
    role, region = backend.copy_options()
    for table in (*KIND_TABLE.values(), "etl_rejects"):
        manifest = f"'{PREFIX}/run/{table}.manifest'"
        found.append(RedshiftBackend.s3_copy_sql(table, manifest, role, region))
    return found


def parse(sql: str) -> Any:
    code = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return sqlglot.parse_one(code, read="redshift")


def create_statements() -> dict[str, exp.Create]:
    found = {}
    for sql in RedshiftBackend.dialect_statements().create_tables():
        tree = parse(sql)
        assert isinstance(tree, exp.Create)
        found[tree.this.this.name] = tree
    return found


# -- 1. the SQL, offline --------------------------------------------------------------------
def test_every_statement_parses_as_redshift() -> None:
    for sql in every_statement():
        tree = parse(sql)
        if isinstance(tree, exp.Command):  # sqlglot keeps LOCK and RESET as opaque commands
            assert tree.sql(dialect="redshift").upper() in OPAQUE, sql
        assert tree is not None, sql


def test_tables_carry_the_distribution_and_sort_design() -> None:
    tables = create_statements()
    assert set(tables) == set(TABLES)
    for table, (style, distkey, sortkey) in DESIGN.items():
        props = tables[table].args["properties"]
        found_style = props.find(exp.DistStyleProperty)
        found_key = props.find(exp.DistKeyProperty)
        found_sort = props.find(exp.SortKeyProperty)
        assert found_style is not None and found_style.this.name.upper() == style, table
        assert (found_key.this.name if found_key else None) == distkey, table
        assert found_sort is not None, table
        assert [c.name for c in found_sort.this] == sortkey, table


def test_columns_have_explicit_widths_and_precision() -> None:
    temporary = [
        parse(sql) for sql in Statements(("redshift", "postgres", "common")).get("create_affected")
    ]
    for table, tree in [*create_statements().items(), *(("temp", t) for t in temporary)]:
        for column in tree.find_all(exp.ColumnDef):
            kind = column.args["kind"]
            if kind.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR):
                assert kind.expressions, f"{table}.{column.name} has no explicit width"
            if kind.this == exp.DataType.Type.DECIMAL:
                assert len(kind.expressions) == 2, f"{table}.{column.name} needs a scale"
            assert kind.this != exp.DataType.Type.TEXT, f"{table}.{column.name} is TEXT"
    widths = {
        c.name: c.args["kind"].sql()
        for c in create_statements()["songplays"].find_all(exp.ColumnDef)
    }
    assert widths["user_agent"] == "VARCHAR(1024)" and widths["level"] == "VARCHAR(256)"


def test_copy_reads_exactly_a_manifest_with_the_role_and_no_secret() -> None:
    copies = [
        parse(sql)
        for sql in every_statement()
        if sql.lstrip().upper().startswith("COPY") and "raw_landing" not in sql  # test_redshift_raw
    ]
    assert len(copies) == 6  # three rendered by the dry run, three with real settings
    for copy in copies:
        assert isinstance(copy, exp.Copy)
        source = copy.args["files"][0].name
        assert len(copy.args["files"]) == 1 and re.fullmatch(r"s3://[^']+\.manifest", source)
        credentials = copy.args["credentials"]
        assert set(credentials.args) == {"iam_role"}  # no keys, no CREDENTIALS string
        assert credentials.args["iam_role"].name in (ROLE, "<[IAM_ROLE] ARN>")
        # sqlglot pairs up the bare words of COPY oddly; the words themselves are reliable
        words = [w.name.upper() for p in copy.args["params"] for w in p.find_all(exp.Var)]
        assert {"MANIFEST", "JSON", "GZIP", "REGION", "MAXERROR"} <= set(words), words
        assert "TRUNCATECOLUMNS" not in words and "ACCEPTINVCHARS" not in words
        formats = {
            p.this.name: p.args["expression"].name
            for p in copy.args["params"]
            if isinstance(p.args.get("expression"), exp.Literal)
        }
        table = copy.this.this.name
        assert formats.get("TIMEFORMAT") == ("epochmillisecs" if table in COPY_DERIVED else None)
        assert formats["MAXERROR"] == str(RedshiftBackend.copy_max_errors)
        assert [c.name for c in copy.this.expressions] == table_columns(table)


def test_no_truncate_and_no_secrets_anywhere() -> None:
    for sql in every_statement():
        assert not parse(sql).find(exp.TruncateTable), sql
        assert "TRUNCATE" not in sql.upper(), sql
        assert SECRET not in sql and "AKIAEXAMPLE" not in sql, sql
    assert ROLE in "\n".join(every_statement())


def test_sparkify_sql_prints_the_redshift_run() -> None:
    result = run_cli("sql", "--backend", "redshift")
    assert result.exit_code == 0, result.stderr
    assert "DISTKEY(user_id)" in result.stdout and "FORMAT AS JSON 'auto'" in result.stdout
    assert "pg_advisory" not in result.stdout and "COLLATE" not in result.stdout


# -- 2. S3 and IAM, with moto ---------------------------------------------------------------
@contextlib.contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """In-process moto with the staging bucket; yields its S3 client."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mocked_aws(monkeypatch) as s3:
        yield s3


def objects(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def body_of(s3: Any, url: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=url[len(f"s3://{BUCKET}/") :])["Body"].read())


class SmallParts(RedshiftBackend):
    """Staged files of a few hundred bytes, on a cluster of 2 slices."""

    staging_part_bytes = 400
    staging_min_part_bytes = 100

    def slices(self) -> int:
        return 2


def test_stage_splits_the_rows_into_files_for_every_slice_and_a_manifest_naming_them(
    aws: Any, tmp_path: Path
) -> None:
    canonical = tmp_path / "events.json"
    rows = [
        {"file_id": 1, "line_no": n, "ts": 1541105830796 + n, "page": "NextSong"}
        for n in range(1, 21)
    ]
    canonical.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")  # ~1,400 bytes
    backend = SmallParts(settings(aws__key="", aws__secret=""))
    staged = backend.stage("staging_events", [canonical])
    assert staged.rows == 20 and staged.manifest_url.startswith(PREFIX + "/")
    assert len(staged.parts) == 4  # 1,400 / 400 bytes, rounded up to a multiple of 2 slices
    manifest = json.loads(body_of(aws, staged.manifest_url))
    assert [(e["url"], e["mandatory"]) for e in manifest["entries"]] == [
        (part.url, True) for part in staged.parts
    ]
    lines = [
        orjson.loads(line)
        for part in staged.parts
        for line in gzip.decompress(body_of(aws, part.url)).splitlines()
    ]
    assert sorted(lines, key=lambda r: r["line_no"]) == [{**r, "start_time": r["ts"]} for r in rows]
    assert sorted(objects(aws)) == sorted(
        u[len(f"s3://{BUCKET}/") :] for u in (*(p.url for p in staged.parts), staged.manifest_url)
    )


@pytest.mark.parametrize(
    ("total", "slices", "expected"),
    [
        (1, 4, 1),  # tiny: one file
        (20 << 20, 4, 2),  # no file under the minimum
        (600 << 20, 4, 4),  # a multiple of the slices
        (5 << 30, 4, 12),  # about the part size each
    ],
)
def test_part_count(total: int, slices: int, expected: int) -> None:
    assert part_count(total, slices, 512 << 20, 8 << 20) == expected


def test_large_files_go_up_in_a_multipart_upload(aws: Any, tmp_path: Path) -> None:
    local = tmp_path / "part.json.gz"
    local.write_bytes(os.urandom(11 << 20))
    backend = RedshiftBackend(settings(aws__key="", aws__secret=""))
    backend.multipart_bytes = 5 << 20  # S3's smallest part
    backend.upload(local, f"{PREFIX}/big.json.gz")
    head = aws.head_object(Bucket=BUCKET, Key="loads/big.json.gz")
    assert head["ContentLength"] == 11 << 20 and head["ETag"].strip('"').endswith("-3")
    assert body_of(aws, f"{PREFIX}/big.json.gz") == local.read_bytes()
    assert aws.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"s3__staging_prefix": ""}, "missing [S3] STAGING_PREFIX"),
        ({"s3__staging_prefix": "/tmp/x"}, "[S3] STAGING_PREFIX must be an s3:// URL"),
        ({"iam_role__arn": ""}, "missing [IAM_ROLE] ARN"),
        ({"iam_role__arn": "arn:aws:iam::1:role/x' CREDENTIALS 'y"}, "[IAM_ROLE] ARN is not valid"),
    ],
)
def test_copy_settings_are_checked_before_anything_is_uploaded(
    aws: Any, tmp_path: Path, override: dict[str, str], message: str
) -> None:
    canonical = tmp_path / "songs.json"
    canonical.write_bytes(b'{"file_id": 1, "line_no": 1}\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        RedshiftBackend(settings(**override)).load_canonical("staging_songs", [canonical])
    assert objects(aws) == []


def test_without_a_password_it_connects_with_iam_credentials(aws: Any) -> None:
    redshift = boto3.client("redshift", region_name=REGION)
    redshift.create_cluster(
        ClusterIdentifier="sparkify", NodeType="ra3.large", MasterUsername="awsuser",
        MasterUserPassword="Passw0rd-x", ClusterType="single-node",
    )  # fmt: skip
    backend = RedshiftBackend(settings(cluster__db_password="", aws__key="", aws__secret=""))
    params = backend.connection_params()
    assert "password" not in params and params["sslmode"] == "require" and params["port"] == "5439"
    found = backend.iam_credentials("sparkify", params)
    assert found["user"] == "IAM:awsuser" and len(found["password"]) == 32
    assert SECRET not in backend.describe() and backend.describe().startswith("redshift://awsuser@")


def test_serverless_endpoints_use_get_credentials(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.awsrequest import AWSResponse

    asked: list[dict[str, Any]] = []

    def answer(params: dict[str, Any], **kwargs: Any) -> Any:
        asked.append(json.loads(params["body"]))
        body = {"dbUser": "IAM:me", "dbPassword": "temporary", "expiration": 0}
        return AWSResponse("https://aws.invalid", 200, {}, None), body

    host = "sparkify-wg.123456789012.us-east-1.redshift-serverless.amazonaws.com"
    backend = RedshiftBackend(settings(cluster__host=host, cluster__db_password=""))
    backend.aws().session.events.register("before-call.redshift-serverless.GetCredentials", answer)
    assert backend.serverless
    assert backend.iam_credentials("sparkify-wg", backend.connection_params()) == {
        "user": "IAM:me",
        "password": "temporary",
    }
    assert asked == [
        {"workgroupName": "sparkify-wg", "dbName": "sparkify", "durationSeconds": 3600}
    ]


# -- 3. everything else, live on PostgreSQL -------------------------------------------------
STAND_IN = "/* stand-in */"  # leads every statement the stand-in sends in place of Redshift's


def strip_redshift_clauses(sql: str) -> str:
    return re.sub(
        r"\s*\b(DISTSTYLE \w+|DISTKEY\([^)]*\)|(COMPOUND )?SORTKEY\([^)]*\)|PREDICATE COLUMNS)",
        "",
        sql,
    )


# The load-error logs the stand-in can keep: Redshift's SYS view (every cluster today,
# Serverless and concurrency scaling included; no raw value) and its older STL table.
LOAD_ERROR_LOGS = {
    "sys_load_error_detail": (
        "CREATE TABLE IF NOT EXISTS sys_load_error_detail (file_name CHAR(256), line_number "
        "BIGINT, column_name CHAR(127), error_code INTEGER, error_message CHAR(512), "
        "session_id INTEGER DEFAULT pg_backend_pid(), start_time TIMESTAMP DEFAULT "
        "LOCALTIMESTAMP)",
        "INSERT INTO sys_load_error_detail (file_name, line_number, column_name, error_code, "
        "error_message) VALUES (:url, :line, :column, :code, :reason)",
    ),
    "stl_load_errors": (
        "CREATE TABLE IF NOT EXISTS stl_load_errors (filename CHAR(256), line_number BIGINT, "
        "colname CHAR(127), raw_field_value CHAR(1024), err_code INTEGER, err_reason CHAR(100))",
        "INSERT INTO stl_load_errors VALUES (:url, :line, :column, :value, :code, :reason)",
    ),
}


# Redshift's catalog of sort keys, played from the declared keys (tables.py) of the
# schema's tables; a table's comment, when set, is its sort key instead (an older design, or
# one ALTER SORTKEY gave it: the stand-in plays that statement by setting the comment).
DECLARED_SORT_KEYS = " UNION ALL ".join(
    f"SELECT '{table.name}', '{', '.join(table.sortkey)}'" for table in DECLARED
)
PG_TABLE_DEF = (
    f"{STAND_IN} CREATE TEMPORARY VIEW pg_table_def AS "
    'SELECT n.nspname AS schemaname, c.relname AS tablename, k.name AS "column", '
    "CAST(k.position AS INTEGER) AS sortkey "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"JOIN ({DECLARED_SORT_KEYS}) AS d (tablename, sortkey) ON d.tablename = c.relname "
    "CROSS JOIN LATERAL unnest(string_to_array(COALESCE(obj_description(c.oid, 'pg_class'), "
    "d.sortkey), ', ')) WITH ORDINALITY AS k (name, position) "
    "WHERE c.relkind = 'r' AND pg_table_is_visible(c.oid)"  # the search path's tables only
)
ALTER_SORTKEY = re.compile(r"ALTER TABLE (\w+) ALTER (?:COMPOUND )?SORTKEY \(([\w, ]+)\)")


class RedshiftOnPostgres(RedshiftBackend):
    """The Redshift backend on PostgreSQL, with COPY from S3 played from the real manifest."""

    lock_floor_seconds = 0.3
    load_error_log = "sys_load_error_detail"

    def configure_session(self) -> None:
        super().configure_session()
        self.execute(
            f"{STAND_IN} CREATE TEMPORARY VIEW stv_slices AS SELECT generate_series(0, 3) AS slice"
        )
        self.execute(PG_TABLE_DEF)

    def execute(self, sql: str, params: Any = None) -> None:
        """ALTER SORTKEY, which PostgreSQL lacks, is played on the stand-in's catalog."""
        if altered := ALTER_SORTKEY.fullmatch(sql):
            table, columns = altered.groups()
            sql = f"{STAND_IN} COMMENT ON TABLE {table} IS '{columns}'"
        super().execute(sql, params)

    @classmethod
    def dialect_statements(cls) -> Statements:
        statements = super().dialect_statements()
        statements._by_name = {k: strip_redshift_clauses(v) for k, v in statements._by_name.items()}
        return statements

    @classmethod
    def load_statements(cls, table: str) -> list[Sent]:
        """COPY from S3 and its row count are played by ``run_copy`` (its statements are
        marked ``STAND_IN``); the lookup of refused rows is the backend's own."""
        [count] = cls.dialect_statements().get("copy_count")
        played = [cls.s3_copy_sql(table, "", "", ""), count]
        return [
            sent
            for sent in super().load_statements(table)
            if not any(sent.sql.startswith(p.split("\nFROM")[0]) for p in played)
        ]

    def run_copy(self, staged: StagedLoad) -> int:
        """What COPY ... MANIFEST FORMAT AS JSON 'auto' GZIP does, on PostgreSQL: read the
        manifest, load its objects, refuse text wider (in bytes) than its column and log the
        refusal to a stand-in for ``load_error_log``. Its statements begin with ``STAND_IN``,
        so the wire-capture tests can tell them from what Redshift would receive."""
        self.copy_options()
        s3 = self.aws().client("s3")
        bucket, key = staged.manifest_url.removeprefix("s3://").split("/", 1)
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        columns = table_columns(staged.table)
        widths = dict(
            self.query(
                f"{STAND_IN} SELECT column_name, character_maximum_length FROM "
                "information_schema.columns WHERE table_schema = :schema AND table_name = :table",
                {"schema": self.schema, "table": staged.table},
            ).rows
        )
        create, insert = LOAD_ERROR_LOGS[self.load_error_log]
        self.execute(f"{STAND_IN} {create}")
        refused: list[tuple[str, int, str, str, int]] = []
        loaded, names = 0, ", ".join(f'"{c}"' for c in columns)
        sql = f'{STAND_IN} COPY "{staged.table}" ({names}) FROM STDIN'
        with self.con.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[arg-type]
            for entry in manifest["entries"]:
                bucket, key = entry["url"].removeprefix("s3://").split("/", 1)
                data = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                for number, line in enumerate(data.splitlines(), 1):
                    row = orjson.loads(line)
                    wide = [
                        c for c in columns
                        if isinstance(row.get(c), str) and widths.get(c)
                        and len(row[c].encode()) > widths[c]
                    ]  # fmt: skip
                    if wide:
                        refused.append(
                            (entry["url"], number, wide[0], row[wide[0]], widths[wide[0]])
                        )
                        continue
                    for column in COPY_DERIVED.get(staged.table, {}):
                        row[column] = dt.datetime(1970, 1, 1) + dt.timedelta(
                            milliseconds=row[column]
                        )
                    copy.write_row([row.get(c) for c in columns])
                    loaded += 1
        for url, number, column, value, width in refused:
            self.execute(
                f"{STAND_IN} {insert}",
                {
                    "url": url,
                    "line": number,
                    "column": column,
                    "value": value[:1024],
                    "code": 1204,
                    "reason": f"String length exceeds DDL length ({width})",
                },
            )
        return loaded


class RedshiftOnPostgresWithStl(RedshiftOnPostgres):
    """A cluster without SYS_LOAD_ERROR_DETAIL: only STL_LOAD_ERRORS logs refused rows."""

    load_error_log = "stl_load_errors"


def let_wide_text_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser rejects text wider than its Redshift column on every backend; to see how a
    row Redshift itself refuses is reported, let such text through the parser."""
    monkeypatch.setattr(records, "within_width", lambda text, *args: text)


def stand_in(
    dsn: str, monkeypatch: pytest.MonkeyPatch, backend: str = "RedshiftOnPostgres"
) -> Warehouse:
    """A fresh schema on the PostgreSQL server at ``dsn``, loaded by the stand-in ``backend``."""
    monkeypatch.setitem(REGISTRY, "redshift", f"{__name__}:{backend}")
    for key, value in {
        "S3_STAGING_PREFIX": PREFIX,
        "IAM_ROLE_ARN": ROLE,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(f"SPARKIFY_{key}", value)
    schema = f"r_{uuid.uuid4().hex[:12]}"
    overrides = {
        ("WAREHOUSE", "BACKEND"): "redshift",
        ("WAREHOUSE", "DSN"): dsn,
        ("WAREHOUSE", "SCHEMA"): schema,
        ("S3", "STAGING_PREFIX"): PREFIX,
        ("IAM_ROLE", "ARN"): ROLE,
        ("AWS", "REGION"): REGION,
    }
    cli_args = ["--backend", "redshift", "--dsn", dsn, "--schema", schema]
    return Warehouse("redshift", cli_args, overrides)


@pytest.fixture
def redshift_on_postgres(postgres_dsn: str, aws: Any, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    return stand_in(postgres_dsn, monkeypatch)


def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    path = str(tmp_path / "reference.duckdb")
    return Warehouse(
        "duckdb",
        ["--backend", "duckdb", "--database", path],
        {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path},
    )


def test_reading_commands_hold_a_read_only_transaction(
    redshift_on_postgres: Warehouse, semantics_data: Path
) -> None:
    etl(redshift_on_postgres, semantics_data)
    result = redshift_on_postgres.cli("query", "--sql", "DROP TABLE users")
    assert result.exit_code == 1
    assert "read-only transaction" in result.stderr
    assert redshift_on_postgres.query("SELECT COUNT(*) FROM users") == [(2,)]
    listed = redshift_on_postgres.cli("query", "top_songs", "--json")
    assert listed.exit_code == 0, listed.stderr


def test_a_redshift_run_gives_the_same_star_schema_as_duckdb(
    redshift_on_postgres: Warehouse, semantics_data: Path, generated: Path, tmp_path: Path, aws: Any
) -> None:
    reference = duckdb_warehouse(tmp_path)
    for data in (semantics_data, generated):  # a second load on top of the first
        etl(reference, data)
        summary = etl(redshift_on_postgres, data)
        assert dump(redshift_on_postgres) == dump(reference)
        assert all(check["passed"] for check in summary["checks"])
    assert objects(aws) == []  # staged copies are removed once loaded
    rerun = etl(redshift_on_postgres, generated)
    assert rerun["files"]["new"] == rerun["files"]["changed"] == 0


@pytest.mark.parametrize("dataset", ["sample_data", "faulty_generated", "model_data"])
def test_every_backend_builds_the_same_tables_as_redshift(
    dataset: str, warehouse: Warehouse, redshift_on_postgres: Warehouse, request: Any
) -> None:
    """The star schema and the event model, on the public sample, on generated data with
    faulty lines and on the event model's parsing cases: DuckDB and PostgreSQL (the
    ``warehouse`` fixture) each equal to the Redshift stand-in."""
    data = request.getfixturevalue(dataset)
    for target in (warehouse, redshift_on_postgres):
        summary = etl(target, data)
        assert all(check["passed"] for check in summary["checks"])
    assert dump(warehouse) == dump(redshift_on_postgres)


def test_moved_and_pruned_files_on_redshift_give_the_tables_of_a_fresh_load(
    redshift_on_postgres: Warehouse, semantics_data: Path, tmp_path: Path, aws: Any
) -> None:
    etl(redshift_on_postgres, semantics_data)
    songs = semantics_data / "song_data"
    first, later, gone = (
        songs / "A/B/C/TRSO1.json",
        songs / "Z/TRSO1.json",
        songs / "A/B/C/TRSO4.json",
    )
    later.parent.mkdir()
    first.rename(later)
    gone.unlink()

    summary = etl(redshift_on_postgres, semantics_data, "--prune")

    assert summary["moved"] == [{"from": str(first), "to": str(later)}]
    assert (summary["missing"], summary["pruned"], summary["lines_read"]) == ([str(gone)], True, 0)
    reference = duckdb_warehouse(tmp_path)
    etl(reference, semantics_data)
    assert dump(redshift_on_postgres) == dump(reference)


def test_the_public_sample_gives_the_known_figures(
    redshift_on_postgres: Warehouse, sample_data: Path
) -> None:
    summary = etl(redshift_on_postgres, sample_data)
    tables = {k: v for k, v in summary["tables"].items() if k != "user_levels"}
    assert tables == SAMPLE_TABLES
    assert redshift_on_postgres.query("SELECT COUNT(*) FROM staging_events") == [(8056,)]
    assert summary["rows_rejected"] == 0


def test_rejected_records_reach_etl_rejects_through_copy(
    redshift_on_postgres: Warehouse, tmp_path: Path
) -> None:
    from sparkify.generator import GenerateOptions, generate

    generate(tmp_path, GenerateOptions(users=10, days=2, songs=20, bad_records=0.05, seed=3))
    summary = etl(redshift_on_postgres, tmp_path)
    assert summary["rows_rejected"] > 0
    rejects = json.loads(redshift_on_postgres.cli("rejects", "--json", "--limit", "1000").stdout)
    assert len(rejects) == summary["rows_rejected"] and all(r["raw"] for r in rejects)


@pytest.mark.parametrize("backend", ["RedshiftOnPostgres", "RedshiftOnPostgresWithStl"])
def test_a_row_redshift_refuses_fails_the_run_with_the_reason(
    postgres_dsn: str,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    semantics_data: Path,
    backend: str,
) -> None:
    """The reason comes from sys_load_error_detail wherever it exists, else stl_load_errors."""
    redshift_on_postgres = stand_in(postgres_dsn, monkeypatch, backend)
    let_wide_text_through(monkeypatch)
    song_file = next((semantics_data / "song_data").rglob("*.json"))
    record = json.loads(song_file.read_text())
    record["title"] = "é" * 600  # 600 characters, 1200 bytes: wider than VARCHAR(1024)
    song_file.write_text(json.dumps(record))
    result = redshift_on_postgres.cli(
        "etl",
        "--songs",
        str(semantics_data / "song_data"),
        "--logs",
        str(semantics_data / "log_data"),
    )
    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: Redshift rejected 1 of 5 rows loading staging_songs; the run")
    assert re.search(
        r"staging_songs-0000\.json\.gz line \d \(source file_id \d+ line 1\), column title, "
        r"value 'éééé.*': String length exceeds DDL length \(1024\) \(1204\)",
        message,
    ), message
    assert redshift_on_postgres.query("SELECT COUNT(*) FROM staging_songs") == [(0,)]
    assert [k for k in objects(aws) if k.endswith("staging_songs-0000.json.gz")]  # kept


def test_bookkeeping_rows_go_in_a_few_statements_for_thousands_of_files(
    statement_logs: Callable[[], StatementLog],
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    files = 3000  # etl_files: 3,001 rows of 11 values, more than 32,767 parameters
    for n in range(files):
        write_song(tmp_path, song(f"SO{n:05d}", f"Title {n}", f"Artist {n % 97}", 100.0 + n))
    write_day(tmp_path, [play(NOV_1, 1, 10, 0, song="Title 7", artist="Artist 7")])
    log = statement_logs()
    warehouse = stand_in(log.dsn, monkeypatch)
    summary = etl(warehouse, tmp_path)
    assert summary["files"]["new"] == files + 1
    assert warehouse.query("SELECT COUNT(*), COUNT(DISTINCT url) FROM etl_files") == [
        (files + 1, files + 1)
    ]
    inserts = [s.sql.split(" (")[0] for s in log.statements() if re.match(r'INSERT INTO "', s.sql)]
    assert sorted(inserts) == [
        'INSERT INTO "etl_files"', 'INSERT INTO "etl_files"', 'INSERT INTO "etl_runs"',
        'INSERT INTO "run_files"', 'INSERT INTO "run_files"',
    ]  # fmt: skip
    assert len(log.statements()) < 150


def test_an_older_warehouse_gets_the_declared_sort_keys_and_counts_with_its_next_run(
    statement_logs: Callable[[], StatementLog],
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    semantics_data: Path,
) -> None:
    """A warehouse made before staging_events was sorted by session (it was by file_id),
    and before user_agents and locations counted their events: the next run gives it the
    declared sort key (ALTER SORTKEY, only where the catalog shows another) and the counts,
    with the data unchanged; the run after changes nothing."""
    log = statement_logs()
    warehouse = stand_in(log.dsn, monkeypatch)
    etl(warehouse, semantics_data)
    loaded = dump(warehouse)
    backend = warehouse.backend()
    backend.connect()
    try:
        backend.execute("ALTER TABLE staging_events ALTER SORTKEY (file_id)")
        for table in ("user_agents", "locations"):
            backend.execute(f"ALTER TABLE {table} DROP COLUMN events")
    finally:
        backend.close()
    sort_key = "SELECT \"column\" FROM pg_table_def WHERE tablename = 'staging_events'"
    assert warehouse.query(sort_key) == [("file_id",)]
    upgraded = log.statements()
    summary = etl(warehouse, semantics_data)
    assert summary["files"]["new"] == 0
    assert all(check["passed"] for check in summary["checks"])
    assert warehouse.query(sort_key) == [("session_id",)]
    assert dump(warehouse) == loaded
    changes = re.compile(r"ALTER TABLE|/\* stand-in \*/ COMMENT ON")
    upgrade = [s.sql for s in log.statements()[len(upgraded) :] if changes.search(s.sql)]
    assert upgrade == [
        "ALTER TABLE user_agents ADD COLUMN events BIGINT",
        "ALTER TABLE locations ADD COLUMN events BIGINT",
        f"{STAND_IN} COMMENT ON TABLE staging_events IS 'session_id'",  # ALTER SORTKEY
    ]
    again = log.statements()
    etl(warehouse, semantics_data)
    assert [s.sql for s in log.statements()[len(again) :] if changes.search(s.sql)] == []


def test_the_design_upgrades_are_redshift_sql() -> None:
    upgrades = RedshiftBackend.dialect_statements().design()
    assert upgrades["staging_events session_id"] == (
        "ALTER TABLE staging_events ALTER SORTKEY (session_id)"
    )
    assert upgrades["user_levels user_id, valid_from"] == (
        "ALTER TABLE user_levels ALTER COMPOUND SORTKEY (user_id, valid_from)"
    )
    for sql in upgrades.values():
        sqlglot.parse_one(sql, read="redshift")


@pytest.mark.parametrize(
    ("rows", "limits", "sizes"),
    [
        ([(1, "a")] * 40_000, (32_767, 1 << 20), [16_383, 16_383, 7_234]),
        ([(1, "é" * 1000)] * 10, (32_767, 4_500), [2, 2, 2, 2, 2]),  # 2,000 bytes each
        ([(1, "x" * 9000), (2, "y")], (32_767, 4_500), [1, 1]),  # one row over the budget
        ([], (32_767, 1 << 20), []),
    ],
)
def test_insert_batches_stay_under_the_parameter_and_size_limits(
    rows: list[tuple], limits: tuple[int, int], sizes: list[int]
) -> None:
    batches = list(insert_batches(rows, 2, *limits))
    assert [len(batch) for batch in batches] == sizes
    assert [row for batch in batches for row in batch] == rows


# Redshift's serialization conflict: error 1023 under the catch-all SQLSTATE XX000 (the AWS
# troubleshooting guide: "ERROR:1023 DETAIL: Serializable isolation violation on table").
CONFLICT = ("1023", "Serializable isolation violation on table - 100123, transactions forming "
            "the cycle are: 4223, 4227 (pid:7208)")  # fmt: skip


def raise_internal_error(backend: Backend, message: str, detail: str = "") -> None:
    """Make the server itself answer with SQLSTATE XX000, ``message`` and ``detail``."""
    backend.execute(
        f"DO $$BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = '{message}', "
        f"DETAIL = '{detail}'; END$$"
    )


@pytest.mark.parametrize(
    ("message", "detail", "transient"),
    [
        (*CONFLICT, True),
        ("1023", "", True),
        ("Serializable isolation violation on table", "", True),
        ("could not open relation with OID 16385", "", False),
        ("10234", "", False),
    ],
)
def test_only_redshift_serialization_conflicts_among_internal_errors_are_transient(
    redshift_on_postgres: Warehouse, message: str, detail: str, transient: bool
) -> None:
    backend = redshift_on_postgres.backend()
    backend.connect()
    try:
        with pytest.raises(WarehouseError, match=f"Redshift error XX000: {message}") as raised:
            raise_internal_error(backend, message, detail)
    finally:
        backend.close()
    assert isinstance(raised.value, TransientWarehouseError) is transient


def run_with_an_internal_error(
    warehouse: Warehouse, data: Path, message: str, detail: str = ""
) -> tuple[list[str], Any]:
    """A run whose first upsert_songplays meets SQLSTATE XX000; returns the steps reached
    and the summary (or the error raised)."""
    reached: list[str] = []
    backend = warehouse.backend()

    def conflict_once(step: str) -> None:
        reached.append(step)
        if step == "upsert_songplays" and reached.count(step) == 1:
            raise_internal_error(backend, message, detail)

    backend.connect()
    try:
        options = EtlOptions(songs=str(data / "song_data"), logs=str(data / "log_data"))
        return reached, run_etl(backend, options, fail_after=conflict_once)
    except WarehouseError as exc:
        return reached, exc
    finally:
        backend.close()


def test_a_serialization_conflict_reruns_the_run_from_the_start(
    redshift_on_postgres: Warehouse, semantics_data: Path, tmp_path: Path
) -> None:
    reached, summary = run_with_an_internal_error(redshift_on_postgres, semantics_data, *CONFLICT)
    assert reached.count("upsert_songplays") == 2 and reached.count("parse") == 2
    assert summary.status == "succeeded" and summary.files_new == len(
        list(semantics_data.rglob("*.json"))
    )
    runs = redshift_on_postgres.query("SELECT run_id, status, message FROM etl_runs ORDER BY 1")
    assert [run[:2] for run in runs] == [(1, "failed"), (2, "succeeded")]
    assert "Redshift error XX000: 1023 (Serializable isolation violation" in runs[0][2]
    reference = duckdb_warehouse(tmp_path)
    etl(reference, semantics_data)
    assert dump(redshift_on_postgres) == dump(reference)


def test_other_internal_errors_fail_the_run_at_once(
    redshift_on_postgres: Warehouse, semantics_data: Path
) -> None:
    reached, error = run_with_an_internal_error(
        redshift_on_postgres, semantics_data, "could not open relation with OID 16385"
    )
    assert reached.count("upsert_songplays") == 1
    assert isinstance(error, WarehouseError) and not isinstance(error, TransientWarehouseError)
    assert redshift_on_postgres.query("SELECT status FROM etl_runs") == [("failed",)]


def one_insert_row(sql: str) -> str:
    """A multi-row INSERT as the run plan shows it: with one row of placeholders."""
    return re.sub(r"VALUES (\([^()]*\))(, \1)+$", r"VALUES \1", sql)


def test_a_run_sends_the_planned_statements(
    redshift_on_postgres: Warehouse, two_days: Path, recorder: Recorder
) -> None:
    """What the stand-in's runs send to the driver, but for the COPY it plays, is the run
    plan's list for the same conditions (tests/test_plan.py does the same on DuckDB and
    PostgreSQL)."""
    summary, sent = recorded_run(redshift_on_postgres, two_days, recorder)
    sent = [one_insert_row(sql) for sql in sent if not sql.startswith(STAND_IN)]
    first = facts(tables_missing=True, reads_files=True, stage_songs=True, new_songs=True,
                  stage_events=True, new_events=True, loads=True, parsed_rows=True)  # fmt: skip
    assert summary.files_new == 3
    assert sent == expected_statements(RedshiftOnPostgres, first)
    day = next((two_days / "log_data").rglob("2018-11-02-*.json"))
    day.write_bytes(day.read_bytes() + b"\n{not json")
    write_song(two_days, song("SO2", "Song Two", "The Band", 100.0))
    summary, sent = recorded_run(redshift_on_postgres, two_days, recorder)
    sent = [one_insert_row(sql) for sql in sent if not sql.startswith(STAND_IN)]
    second = facts(reads_files=True, known_changed=True, stage_songs=True, new_songs=True,
                   stage_events=True, rejects=True, loads=True, some_keys=True,
                   songs_affected=True, parsed_rows=True)  # fmt: skip
    assert sent == expected_statements(RedshiftOnPostgres, second)


def test_one_run_at_a_time(redshift_on_postgres: Warehouse) -> None:
    holder, other = redshift_on_postgres.backend(), redshift_on_postgres.backend()
    holder.connect()
    other.connect(wait_seconds=0)
    try:
        ensure_tables(holder)
        with holder.transaction():
            holder.lock_run()
            other.run("lock_wait", other.lock_params())
            with (
                pytest.raises(RunInProgress, match="another run is in progress"),
                other.transaction(),
            ):
                other.lock_run()
        with other.transaction():
            other.lock_run()  # free again once the holder committed
            other.run("lock_wait_end")
        timeout = other.query("SELECT current_setting('statement_timeout')").scalar()
        assert timeout == "0"  # the wait's bound ends once the lock is held
    finally:
        holder.close()
        other.close()


# -- 4. a real cluster, when one is offered ------------------------------------------------------
def live_cluster(schema: str, **extra: str) -> Warehouse:
    """The real cluster of $SPARKIFY_REDSHIFT_TEST_DSN, in ``schema``; ``extra`` settings
    are written SECTION__KEY."""
    dsn = os.environ[LIVE_DSN]
    overrides = {
        ("WAREHOUSE", "BACKEND"): "redshift", ("WAREHOUSE", "DSN"): dsn,
        ("WAREHOUSE", "SCHEMA"): schema,
        ("S3", "STAGING_PREFIX"): os.environ["SPARKIFY_S3_STAGING_PREFIX"],
        ("IAM_ROLE", "ARN"): os.environ["SPARKIFY_IAM_ROLE_ARN"],
        ("AWS", "REGION"): os.environ.get("SPARKIFY_AWS_REGION", "us-west-2"),
    }  # fmt: skip
    for key, value in extra.items():
        section, name = key.split("__")
        overrides[(section, name)] = value
    cli_args = ["--backend", "redshift", "--dsn", dsn, "--schema", schema]
    return Warehouse("redshift", cli_args, overrides)


@pytest.mark.skipif(
    not os.environ.get(LIVE_DSN),
    reason=f"{LIVE_DSN} is not set (a Redshift DSN, plus SPARKIFY_S3_STAGING_PREFIX and "
    "SPARKIFY_IAM_ROLE_ARN, runs this test against a real cluster)",
)
def test_a_real_cluster_loads_the_same_star_schema(semantics_data: Path, tmp_path: Path) -> None:
    missing = [
        n for n in ("SPARKIFY_S3_STAGING_PREFIX", "SPARKIFY_IAM_ROLE_ARN") if not os.environ.get(n)
    ]
    if missing:
        pytest.skip(f"{LIVE_DSN} is set but {', '.join(missing)} is not")
    schema = f"sparkify_test_{uuid.uuid4().hex[:8]}"
    cluster = live_cluster(schema)
    reference = duckdb_warehouse(tmp_path)
    try:
        etl(reference, semantics_data)
        etl(cluster, semantics_data)
        assert dump(cluster) == dump(reference)
    finally:
        cluster.query(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- 5. what goes over the wire ------------------------------------------------------------------
# Statement kinds Redshift has, as the stand-in's runs send them. Left out on purpose:
# DEALLOCATE and PREPARE (Redshift speaks the PostgreSQL 8.0.2 protocol: no DEALLOCATE ALL),
# TRUNCATE (commits the run's transaction), SAVEPOINT, DO, CREATE INDEX, SET ... TO DEFAULT
# forms, and COPY ... FROM STDIN (Redshift COPY reads S3 only; the stand-in plays that COPY, so
# it is checked offline above, with the rest of the statements).
REDSHIFT_STATEMENT_KINDS = frozenset(
    {
        "BEGIN", "COMMIT", "ROLLBACK",
        "SELECT", "INSERT", "UPDATE", "DELETE",
        "CREATE SCHEMA", "CREATE TABLE", "CREATE TEMPORARY TABLE", "DROP TABLE",
        "ALTER TABLE",
        "LOCK", "ANALYZE", "RESET",
    }
)  # fmt: skip
# Amazon Redshift's reserved words (Database Developer Guide, "Reserved words"): used as a
# name, each must be quoted. START and CONNECT are not reserved but fail as unquoted aliases.
RESERVED_WORDS_PAGE = """
    AES128 AES256 ALL ALLOWOVERWRITE ANALYSE ANALYZE AND ANY ARRAY AS ASC AUTHORIZATION AZ64
    BACKUP BETWEEN BINARY BLANKSASNULL BOTH BYTEDICT BZIP2 CASE CAST CHECK COLLATE COLUMN
    CONSTRAINT CREATE CREDENTIALS CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER
    CURRENT_USER_ID DEFAULT DEFERRABLE DEFLATE DEFRAG DELTA DELTA32K DESC DISABLE DISTINCT DO
    ELSE EMPTYASNULL ENABLE ENCODE ENCRYPT ENCRYPTION END EXCEPT EXPLICIT FALSE FOR FOREIGN
    FREEZE FROM FULL GLOBALDICT256 GLOBALDICT64K GRANT GROUP GZIP HAVING IDENTITY IGNORE ILIKE
    IN INITIALLY INNER INTERSECT INTERVAL INTO IS ISNULL JOIN LEADING LEFT LIKE LIMIT LOCALTIME
    LOCALTIMESTAMP LUN LUNS LZO LZOP MINUS MOSTLY16 MOSTLY32 MOSTLY8 NATURAL NEW NOT NOTNULL
    NULL NULLS OFF OFFLINE OFFSET OID OLD ON ONLY OPEN OR ORDER OUTER OVERLAPS PARALLEL
    PARTITION PERCENT PERMISSIONS PIVOT PLACING PRIMARY RAW READRATIO RECOVER REFERENCES
    REJECTLOG RESORT RESPECT RESTORE RIGHT SELECT SESSION_USER SIMILAR SNAPSHOT SOME SYSDATE
    SYSTEM TABLE TAG TDES TEXT255 TEXT32K THEN TIMESTAMP TO TOP TRAILING TRUE TRUNCATECOLUMNS
    UNION UNIQUE UNNEST UNPIVOT USER USING VERBOSE WALLET WHEN WHERE WITH WITHOUT
    START CONNECT
"""
REDSHIFT_RESERVED = frozenset(RESERVED_WORDS_PAGE.split())


def statement_kind(sql: str) -> str:
    """``SELECT``, ``CREATE TEMPORARY TABLE``...: the words that say what a statement does."""
    words = re.sub(r"/\*.*?\*/|--[^\n]*", " ", sql, flags=re.DOTALL).upper().split()
    if words[0] in ("CREATE", "DROP", "ALTER"):
        return " ".join(words[:3] if words[1] in ("TEMPORARY", "TEMP") else words[:2])
    return words[0]


def unquoted_reserved_words(sql: str) -> list[str]:
    """Names in ``sql`` that are Redshift reserved words and not quoted. A column qualified
    by its table (``c.oid``) is no such name: after a dot the grammar takes any word, as in
    Redshift's own PG_TABLE_DEF view."""
    tree = sqlglot.parse_one(sql, read="redshift")
    return [
        i.name for i in tree.find_all(exp.Identifier)
        if not i.quoted and i.name.upper() in REDSHIFT_RESERVED
        and not (isinstance(i.parent, exp.Column) and i is i.parent.this and i.parent.table)
    ]  # fmt: skip


def sent(statements: list[LoggedStatement]) -> list[LoggedStatement]:
    """What Redshift itself would receive: without the stand-in's own statements."""
    return [s for s in statements if not s.sql.startswith(STAND_IN)]


def transactions(statements: list[LoggedStatement]) -> list[list[LoggedStatement]]:
    """The statements from each BEGIN to its COMMIT or ROLLBACK, per connection."""
    found, open_ = [], {}
    for statement in statements:
        kind = statement_kind(statement.sql)
        if kind == "BEGIN":
            open_[statement.pid] = []
        elif kind in ("COMMIT", "ROLLBACK"):
            found.append(open_.pop(statement.pid))
        elif statement.pid in open_:
            open_[statement.pid].append(statement)
    return found


@pytest.fixture(scope="module")
def wire(
    statement_logs: Callable[[], StatementLog], tmp_path_factory: pytest.TempPathFactory
) -> list[LoggedStatement]:
    """Every statement the Redshift backend sends over a series of stand-in runs.

    How the log is captured: the runs connect as a login role of their own, made with
    ``ALTER ROLE ... SET log_statement = 'all'``, on the test server whose
    ``log_line_prefix`` holds the process id and user name (tests/postgres_server.py).
    The server's log file is then read back and parsed into (pid, statement) pairs of that
    role, in the order sent. The stand-in's own statements (``STAND_IN``: it plays COPY from
    S3) are kept, marked, so the tests can leave them out or use them as landmarks.

    The runs: a first load, a second load with rejected records, a rerun with a changed file
    and a touched one, and a run whose COPY refuses a row (its load-error lookup, the
    rollback and the record of the failed run).
    """
    log = statement_logs()
    data = tmp_path_factory.mktemp("wire")
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        warehouse = stand_in(log.dsn, monkeypatch)
        first = data / "first"
        write_song(first, song("SO1", "Song One", "The Band", 200.0))
        write_day(first, [play(NOV_1 + 3_600_000, 1, 10, 0, song="Song One", artist="The Band")])
        etl(warehouse, first)
        second = data / "second"
        generate(second, GenerateOptions(users=5, days=2, songs=10, bad_records=0.05, seed=3))
        etl(warehouse, second)
        changed = max((second / "log_data").rglob("*.json"), key=lambda p: p.stat().st_size)
        changed.write_bytes(changed.read_bytes() + b"\n{not json")
        touched = next((second / "song_data").rglob("*.json"))
        os.utime(touched, (1, 1))  # a new version, the same content
        rerun = etl(warehouse, second)
        assert rerun["files"] == {"new": 0, "changed": 1, "skipped": 11}
        refused = data / "refused"
        let_wide_text_through(monkeypatch)
        write_song(refused, song("SO9", "é" * 600, "Wide", 1.0))  # wider than VARCHAR(1024)
        write_day(refused, [play(NOV_1, 2, 20, 0)])
        result = warehouse.cli(
            "etl", "--songs", str(refused / "song_data"), "--logs", str(refused / "log_data")
        )
        assert result.exit_code == 1 and "Redshift rejected 1 of 1 rows" in result.stderr
    return log.statements()


def test_redshift_is_never_sent_deallocate_nor_prepared_statements(
    wire: list[LoggedStatement],
) -> None:
    assert len(transactions(wire)) >= 5  # four runs and the record of the failed one
    assert [s.sql for s in wire if statement_kind(s.sql) == "DEALLOCATE"] == []
    assert [s.sql for s in wire if s.prepared] == []


def test_every_statement_sent_is_a_kind_redshift_has(wire: list[LoggedStatement]) -> None:
    kinds = {statement_kind(s.sql) for s in sent(wire)}
    assert kinds - REDSHIFT_STATEMENT_KINDS == set()
    assert {"LOCK", "ANALYZE", "UPDATE", "ROLLBACK"} <= kinds  # the runs took every path


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT raw FROM etl_rejects", ["raw"]),
        ("SELECT r.raw FROM etl_rejects AS r", []),
        ("SELECT COUNT(*) FROM pg_class WHERE pg_table_is_visible(oid)", ["oid"]),
        ('SELECT "raw", reason FROM etl_rejects', []),
        ("SELECT 1 AS open FROM time", ["open"]),
    ],
)
def test_unquoted_reserved_words_are_found(sql: str, found: list[str]) -> None:
    assert unquoted_reserved_words(sql) == found


def test_no_reserved_word_is_sent_unquoted(wire: list[LoggedStatement]) -> None:
    for statement in sent(wire):
        if statement_kind(statement.sql) != "LOCK":  # sqlglot keeps LOCK as an opaque command
            assert unquoted_reserved_words(statement.sql) == [], statement.sql


def test_the_run_lock_is_the_first_statement_of_its_transaction(
    wire: list[LoggedStatement],
) -> None:
    runs = [t for t in transactions(wire) if any(statement_kind(s.sql) == "LOCK" for s in t)]
    assert len(runs) == 4
    for run in runs:
        assert statement_kind(run[0].sql) == "LOCK", [s.sql[:40] for s in run[:5]]


def test_staging_is_analyzed_after_it_is_loaded_and_before_the_transforms(
    wire: list[LoggedStatement],
) -> None:
    runs = [t for t in transactions(wire) if any("INTO songplays" in s.sql for s in t)]
    assert len(runs) == 3
    for run in runs:
        sqls = [s.sql for s in run]
        staged = [n for n, sql in enumerate(sqls) if sql.startswith(f'{STAND_IN} COPY "staging_')]
        transform = next(n for n, sql in enumerate(sqls) if "INTO songplays" in sql)
        for table in ("staging_events", "staging_songs"):
            analyzed = [n for n, sql in enumerate(sqls) if sql.startswith(f"ANALYZE {table}")]
            assert analyzed and max(staged, default=-1) < analyzed[-1] < transform, table


# A range of bound values on a column that zone maps cover (staging_events is sorted by
# session_id; file ids and start times follow the same order, time).
BOUNDED_READ = re.compile(r"\b(session_id|file_id) BETWEEN \$\d+ AND \$\d+|\bstart_time >= \$\d+")


def test_a_run_reads_staging_events_only_within_bound_ranges(
    wire: list[LoggedStatement],
) -> None:
    """In a run that affects some of the keys, every statement that reads staging_events
    limits it by a range of bound values, so Redshift's zone maps skip the history's blocks;
    but re-matching plays of any time to songs that changed, and a LIMIT 1 probe."""
    partial = [t for t in transactions(wire) if any("INTO affected_plays" in s.sql for s in t)]
    assert len(partial) == 2  # the second load and the rerun with a changed file
    for run in partial:
        reads = [
            s.sql for s in sent(run)
            if re.search(r"\b(FROM|JOIN) staging_events\b", s.sql)
            and statement_kind(s.sql) != "ANALYZE"
            and "LIMIT 1" not in s.sql and "affected_titles" not in s.sql
        ]  # fmt: skip
        assert len(reads) >= 4  # snapshots, the songplays and the users' histories
        for sql in reads:
            assert BOUNDED_READ.search(sql), sql


def test_a_run_reads_user_events_only_within_the_affected_sessions_range(
    wire: list[LoggedStatement],
) -> None:
    """user_events is as large as staging: in a run that affects some of the keys, every
    statement that reads it (the rebuilt sessions, subscription changes and feedback, and
    the user agents and locations the run's events add or take away) limits it to the
    affected sessions' range of bound values; but a LIMIT 1 probe and the run's summary of
    table sizes (one COUNT(*) per table, docs/redshift.md)."""
    partial = [t for t in transactions(wire) if any("INTO affected_plays" in s.sql for s in t)]
    assert len(partial) == 2
    for run in partial:
        reads = [
            s.sql for s in sent(run)
            if re.search(r"\b(FROM|JOIN) user_events\b", s.sql)
            and "LIMIT 1" not in s.sql and "UNION ALL SELECT 'user_events'" not in s.sql
        ]  # fmt: skip
        assert len(reads) >= 6  # the rebuilt tables, and the dimensions' old and new texts
        for sql in reads:
            assert re.search(r"\bsession_id BETWEEN \$\d+ AND \$\d+", sql), sql


@pytest.mark.parametrize("backend", [PostgresBackend, RedshiftBackend])
def test_the_run_analyzes_staging_as_a_step_before_the_transforms(
    backend: type[PostgresBackend],
) -> None:
    steps = {step.name: [sent.sql for sent in statements] for step, statements in walk(backend)}
    names = list(steps)
    assert names.index("analyze_staging") < names.index("upsert_songplays")
    analyzed = [sql.split()[1] for sql in steps["analyze_staging"] if sql.startswith("ANALYZE")]
    assert analyzed == ["staging_events", "staging_songs"]

"""Amazon Redshift: the PostgreSQL backend with Redshift's table design, lock and bulk load.

Only what differs is overridden. Statements come from sql/redshift.sql, then postgres.sql,
then common.sql. A bulk load uploads the canonical rows the pipeline wrote (gzipped JSON
lines) under [S3] STAGING_PREFIX, writes a manifest naming exactly that object, and runs
``COPY ... MANIFEST FORMAT AS JSON 'auto'``, so every backend stages the same rows and
rejects the same records. A row Redshift still refuses fails the run with the file, line,
column, value and reason read from ``sys_load_error_detail`` (``stl_load_errors`` where
that view is missing). Without a password, connections use IAM temporary credentials.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import psycopg

from sparkify.aws import Aws, resolve_region
from sparkify.backends.base import Backend, Capabilities, Sent, quote_identifier
from sparkify.backends.postgres import PostgresBackend
from sparkify.config import Settings
from sparkify.errors import ConfigError, SparkifyError, WarehouseError
from sparkify.parsing import Parser
from sparkify.progress import ProgressFactory
from sparkify.sources import Source, SourceFile
from sparkify.staging import CANONICAL, KIND_TABLE, table_columns

_AWS_HOST = re.compile(
    r"^(?P<name>[a-z0-9-]+)\.[a-z0-9]+\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)"
    r"\.(?P<kind>redshift|redshift-serverless)\.amazonaws\.com(\.cn)?$"
)
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^'\\\s]*)?$")
# Columns COPY fills from another key of the same JSON line (staging's derived columns): the
# timestamp is the epoch milliseconds of ts, parsed by TIMEFORMAT 'epochmillisecs'.
COPY_DERIVED = {
    table: {column: d.source for column, d in derived.items()}
    for table, (_, derived) in CANONICAL.items()
    if derived
}


@dataclass(frozen=True)
class StagedPart:
    """One gzip file of a table's rows: where it is written locally and uploaded."""

    local: Path
    url: str


@dataclass(frozen=True)
class StagedLoad:
    """One table's rows uploaded for COPY: the data objects and the manifest naming them."""

    table: str
    parts: tuple[StagedPart, ...]
    rows: int
    manifest_url: str


def part_count(total_bytes: int, slices: int, part_bytes: int, min_part_bytes: int) -> int:
    """How many files a table's rows are split into for COPY: about ``part_bytes`` each,
    a multiple of the cluster's slices so that every slice loads its share, but none below
    ``min_part_bytes`` (AWS: 1 MB to 1 GB compressed each, a multiple of the slices)."""
    wanted = max(1, -(-total_bytes // part_bytes))
    wanted = -(-wanted // slices) * slices
    return max(1, min(wanted, total_bytes // min_part_bytes))


def _literal(value: str, pattern: re.Pattern[str], what: str) -> str:
    """A COPY option as a SQL string literal. COPY takes no bind parameters, so the few
    values it needs are validated against a strict pattern before being quoted."""
    if not pattern.match(value):
        raise ConfigError(f"{what} is not valid for a Redshift COPY: {value!r}")
    return "'" + value + "'"


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


class RedshiftBackend(PostgresBackend):
    name = "redshift"
    capabilities = Capabilities(
        sql_chain=("redshift", "redshift_load", "postgres", "common"),
        paramstyle="pyformat",
        supports_schema=True,
    )
    product: ClassVar[str] = "Redshift"
    url_scheme: ClassVar[str] = "redshift"
    default_port: ClassVar[int] = 5439
    credential_seconds: ClassVar[int] = 3600  # IAM temporary credentials (900..3600)
    lock_floor_seconds: ClassVar[float] = 5.0  # a LOCK needs a moment even when free
    lock_timeout_sqlstate: ClassVar[str] = "57014"  # query_canceled: statement_timeout passed
    copy_max_errors: ClassVar[int] = 100_000  # keeps the transaction alive to read errors
    max_bind_parameters: ClassVar[int] = 32_767  # per statement, in the wire protocol
    # Bound values per INSERT; Redshift takes statements of up to 16 MB.
    max_insert_bytes: ClassVar[int] = 4 << 20
    # No server-side prepared statements: after a DROP or ROLLBACK psycopg would clear them
    # with DEALLOCATE ALL, which Redshift (PostgreSQL 8.0.2 protocol) does not have.
    prepare_threshold = None
    # Redshift has no default_transaction_read_only: one read-only transaction, held open.
    read_only_statements: ClassVar[tuple[str, ...]] = ("BEGIN READ ONLY",)
    # Staged files of parsed rows, sized on their JSON lines (gzip makes them 5-10x smaller)
    staging_part_bytes: ClassVar[int] = 512 << 20
    staging_min_part_bytes: ClassVar[int] = 8 << 20
    multipart_bytes: ClassVar[int] = 64 << 20  # larger objects go up in parts of this size
    upload_threads: ClassVar[int] = 8
    # Sessions landing raw files at once, by default: more than a few queue in workload
    # management and each holds a connection.
    max_copy_sessions: ClassVar[int] = 16
    serverless_slices: ClassVar[int] = 8  # Serverless does not show its slices (stv_slices)

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        super().__init__(settings, read_only)
        self._aws: Aws | None = None
        self._run_prefix = ""
        # Landing tables (content keys) of raw files Redshift read in several scan ranges:
        # sparkify parses those files itself (redshift_raw).
        self.split_landings: set[str] = set()
        self._uploaded: list[str] = []  # objects of successful loads, removed at close
        self._landed: dict[Path, str] = {}  # marker part -> kind checked by raw_copy

    def enforced_keys(self) -> frozenset[tuple[str, tuple[str, ...]]]:
        """None: Redshift declares primary keys but never enforces them."""
        return frozenset()

    # -- connection ---------------------------------------------------------------------
    @property
    def aws_host(self) -> re.Match[str] | None:
        """The cluster or workgroup endpoint, parsed; None for any other host."""
        host = self.settings.get("CLUSTER", "HOST") or ""
        dsn = self.settings.get("WAREHOUSE", "DSN")
        if dsn:
            try:
                host = str(psycopg.conninfo.conninfo_to_dict(dsn).get("host") or "")
            except psycopg.ProgrammingError:
                return None  # connection_params reports the bad DSN
        return _AWS_HOST.match(host.lower())

    @property
    def serverless(self) -> bool:
        found = self.aws_host
        return bool(found and found["kind"] == "redshift-serverless")

    def aws(self) -> Aws:
        """AWS clients (``sparkify.aws``): S3 in the region every S3 access resolves; the
        Redshift APIs in the region of the cluster's or workgroup's endpoint."""
        if self._aws is None:
            found = self.aws_host
            region = found["region"] if found else None
            regions = {"redshift": region, "redshift-serverless": region}
            self._aws = Aws.from_settings(self.settings, regions)
        return self._aws

    def connection_params(self) -> dict[str, Any]:
        params = super().connection_params()
        if self.aws_host:
            params.setdefault("sslmode", "require")
        return params

    def open_connection(self, params: dict[str, Any]) -> psycopg.Connection[Any]:
        """Without a password for an AWS endpoint, use IAM temporary credentials."""
        found = self.aws_host
        if found and not params.get("password") and not os.environ.get("PGPASSWORD"):
            params = {**params, **self.iam_credentials(found["name"], params)}
        return super().open_connection(params)

    def iam_credentials(self, name: str, params: dict[str, Any]) -> dict[str, str]:
        """GetClusterCredentials (as [CLUSTER] DB_USER) or Serverless GetCredentials."""
        database = params.get("dbname") or self.settings.get("CLUSTER", "DB_NAME")
        if self.serverless:
            found = self.aws().call(
                "redshift-serverless",
                "get_credentials",
                workgroupName=name,
                dbName=database,
                durationSeconds=self.credential_seconds,
            )
            return {"user": found["dbUser"], "password": found["dbPassword"]}
        user = params.get("user") or self.settings.require(
            "CLUSTER", "DB_USER", "the database user to get IAM credentials for"
        )
        found = self.aws().call(
            "redshift",
            "get_cluster_credentials",
            DbUser=user,
            DbName=database,
            ClusterIdentifier=name,
            DurationSeconds=self.credential_seconds,
            AutoCreate=False,
        )
        return {"user": found["DbUser"], "password": found["DbPassword"]}

    def close(self) -> None:
        uploaded, self._uploaded = self._uploaded, []
        super().close()
        for url in uploaded:  # staged copies of rows already in the warehouse
            bucket, key = _split_s3(url)
            try:
                self.aws().call("s3", "delete_object", ("NoSuchKey",), Bucket=bucket, Key=key)
            except SparkifyError:
                return  # only a leftover copy under STAGING_PREFIX; the data is loaded

    def configure_session(self) -> None:
        """Nothing to set: Redshift gives each query its memory through workload management."""

    @classmethod
    def insert_sql(cls, table: str, columns: Sequence[str], rows: int = 1) -> str:
        """A multi-row INSERT of ``rows`` rows (the dry run shows one)."""
        names = ", ".join(quote_identifier(c) for c in columns)
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        return f"INSERT INTO {quote_identifier(table)} ({names}) VALUES " + ", ".join(
            [marks] * rows
        )

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Redshift has no COPY FROM STDIN: multi-row INSERTs with bound values, each as
        large as the parameter and size limits allow (a few per run, not one per row)."""
        limits = (self.max_bind_parameters, self.max_insert_bytes)
        try:
            with self.con.cursor() as cursor:
                for batch in insert_batches(rows, len(columns), *limits):
                    sql = self.insert_sql(table, columns, len(batch))
                    values = [value for row in batch for value in row]
                    cursor.execute(sql, values)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def s3_copy_sql(cls, table: str, manifest_url: str, role_arn: str, region: str) -> str:
        """COPY of exactly the objects a manifest lists; JSON keys name the columns."""
        columns = ", ".join(quote_identifier(c) for c in table_columns(table))
        timeformat = "\nTIMEFORMAT 'epochmillisecs'" if table in COPY_DERIVED else ""
        return (
            f"COPY {quote_identifier(table)} ({columns})\n"
            f"FROM {manifest_url}\nIAM_ROLE {role_arn}\nMANIFEST\n"
            f"FORMAT AS JSON 'auto'\nGZIP{timeformat}\nREGION {region}\n"
            f"MAXERROR {cls.copy_max_errors}\nCOMPUPDATE OFF\nSTATUPDATE OFF"
        )

    @classmethod
    def load_statements(cls, table: str) -> list[Sent]:
        """What loading ``table`` sends. Raw S3 files of a staging table are COPYed and
        checked while they are read (``redshift_raw``), each file with its own manifest; the
        rows sparkify parsed are split for the slices and uploaded with a manifest naming
        exactly those objects, then COPYed, counted, and explained when rows were left out."""
        manifest = f"'s3://<STAGING_PREFIX>/<run>/{table}.manifest'"
        copy = cls.s3_copy_sql(table, manifest, "'<[IAM_ROLE] ARN>'", "'<[AWS] REGION>'")
        statements = cls.dialect_statements()
        [slices] = statements.get("count_slices")
        [count] = statements.get("copy_count")
        [has_detail] = statements.get("has_load_error_detail")
        [errors] = statements.get("load_errors")
        [stl_errors] = statements.get("load_errors_stl")
        kind = next((k for k, t in KIND_TABLE.items() if t == table), "")
        parsed = ("parsed_rows",) if kind else ()  # rejects are always staged by sparkify
        refused = (*parsed, "copy_refused")
        return [
            *(cls.raw_statements(kind) if kind else []),
            Sent(slices, (*parsed, "split_parts")),
            Sent(copy, parsed),
            Sent(count, parsed),
            Sent(has_detail, refused),
            Sent(cls.driver_sql(errors, bound=True), (*refused, "load_error_detail")),
            Sent(cls.driver_sql(stl_errors, bound=True), (*refused, "no_load_error_detail")),
        ]

    @classmethod
    def end_parse_statements(cls) -> list[Sent]:
        """The raw path's temporary tables and the landing tables it read go once every
        file is read (in the run's transaction: a failed run keeps its landings)."""
        from sparkify.backends.redshift_raw import end_parse_statements

        return end_parse_statements(cls)

    @classmethod
    def landing_statements(cls) -> list[Sent]:
        """Raw files landed before the run's transaction (``redshift_raw``)."""
        from sparkify.backends.redshift_raw import landing_statements

        return landing_statements(cls)

    @classmethod
    def raw_statements(cls, kind: str) -> list[Sent]:
        """The raw path of one kind in the run's transaction (see ``redshift_raw``)."""
        from sparkify.backends.redshift_raw import raw_statements

        return raw_statements(cls, kind)

    def copy_options(self) -> tuple[str, str]:
        """The IAM role and region COPY needs, validated, as SQL literals."""
        role = self.settings.require(
            "IAM_ROLE", "ARN", "the role Redshift assumes to read S3; `sparkify aws up` sets it"
        )
        region = resolve_region(self.settings)  # the region the staged objects went to
        return (
            _literal(role, _ROLE_ARN, "[IAM_ROLE] ARN"),
            _literal(region, _REGION, "[AWS] REGION"),
        )

    def staging_prefix(self) -> str:
        """A fresh folder under [S3] STAGING_PREFIX for this connection's loads."""
        if not self._run_prefix:
            prefix = self.settings.require(
                "S3", "STAGING_PREFIX", "an s3:// prefix Redshift can read the loads from"
            )
            if not _S3_URL.match(prefix):
                raise ConfigError(f"[S3] STAGING_PREFIX must be an s3:// URL, got {prefix!r}")
            self._run_prefix = f"{prefix.rstrip('/')}/{uuid.uuid4().hex}"
        return self._run_prefix

    # No COPY FROM STDIN to stream into: the part files go to S3 together, for one COPY.
    bulk_load = Backend.bulk_load

    def file_parser(self, scratch: Path, max_errors: int) -> Parser:
        """Big raw files on S3 are COPYed and checked inside Redshift (redshift_raw)."""
        from sparkify.backends.redshift_raw import RawCopyParser

        return RawCopyParser(scratch, self.capabilities.row_format, self, max_errors)

    def land_raw_files(
        self,
        listed: Sequence[tuple[Source, Sequence[SourceFile]]],
        max_errors: int,
        progress: ProgressFactory,
    ) -> None:
        """Big raw files on S3 that the ledger does not hold are COPYed by several sessions
        at once, before the run's transaction (redshift_raw)."""
        from sparkify.backends.redshift_raw import land_before_run

        land_before_run(self, listed, max_errors, progress)

    def landing_session(self) -> RedshiftBackend:
        """Another connection with these settings, for landing raw files beside the run's:
        its manifests go under the run's folder, through the same AWS clients."""
        session = type(self)(self.settings)
        session._aws, session._run_prefix = self.aws(), self.staging_prefix()
        session.connect(self.wait_seconds)
        return session

    def cancel(self) -> None:
        """Ask the server to stop this session's running statement, if any."""
        con = self._con
        if con is not None and not con.closed:
            with contextlib.suppress(psycopg.Error):
                con.cancel_safe()

    def raw_copy_sessions(self) -> int:
        """``[CLUSTER] RAW_COPY_SESSIONS``, or the cluster's slices (at most
        ``max_copy_sessions``): a raw COPY of one file keeps one slice busy."""
        value = (self.settings.get("CLUSTER", "RAW_COPY_SESSIONS") or "").strip()
        if not value:
            return min(self.slices(), self.max_copy_sessions)
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"[CLUSTER] RAW_COPY_SESSIONS must be a whole number >= 1: {value!r}")
        return int(value)

    def landed(self, marker: Path, kind: str) -> Path:
        """A part "file" standing for the rows of ``kind`` checked inside Redshift."""
        self._landed[marker] = kind
        return marker

    @classmethod
    def raw_copy_sql(
        cls, table: str, manifest_url: str, role_arn: str, region: str, max_errors: int
    ) -> str:
        """COPY the lines of the raw file a manifest names into ``table`` (quoted), one
        VARCHAR per line: the field separator is the ASCII record separator, which valid
        JSON never holds unescaped."""
        return (
            f"COPY {table} (line)\nFROM {manifest_url}\nIAM_ROLE {role_arn}\nMANIFEST\n"
            f"DELIMITER '\\036'\nREGION {region}\nMAXERROR {int(max_errors)}\n"
            "COMPUPDATE OFF\nSTATUPDATE OFF"
        )

    def copy_raw(self, table: str, manifest_url: str, max_errors: int) -> None:
        role, region = self.copy_options()
        manifest = _literal(manifest_url, _S3_URL, "the manifest URL")
        self.execute(self.raw_copy_sql(table, manifest, role, region, max_errors))

    def write_manifest(self, name: str, entries: Sequence[tuple[str, int]]) -> str:
        """A COPY manifest listing exactly ``entries`` (URL, size), under the run's folder."""
        manifest_url = f"{self.staging_prefix()}/{name}.manifest"
        manifest = {
            "entries": [
                {"url": url, "mandatory": True, "meta": {"content_length": size}}
                for url, size in entries
            ]
        }
        bucket, key = _split_s3(manifest_url)
        self.aws().call("s3", "put_object", Bucket=bucket, Key=key, Body=json.dumps(manifest))
        self._uploaded.append(manifest_url)
        return manifest_url

    def load_canonical(self, table: str, paths: Sequence[Path]) -> int:
        landed = [p for p in paths if p in self._landed]
        loaded = 0
        for kind in {self._landed.pop(p) for p in landed}:
            [count] = self.statements.get(f"count_checked_{kind}")
            loaded += int(self.query(count).scalar())
            self.run(f"stage_checked_{kind}")
        parsed = [p for p in paths if p not in landed]
        return loaded + (self.load_parts(table, parsed) if parsed else 0)

    def load_parts(self, table: str, paths: Sequence[Path]) -> int:
        """Upload the part files of parsed rows and COPY them."""
        self.copy_options()  # fail on bad settings before uploading anything
        staged = self.stage(table, paths)
        loaded = self.run_copy(staged)
        if loaded != staged.rows:
            raise self.load_failure(staged, loaded)
        self._uploaded += [part.url for part in staged.parts]
        for part in staged.parts:
            part.local.unlink(missing_ok=True)
        return loaded

    def staged_parts(self, total_bytes: int) -> int:
        """How many files ``total_bytes`` of JSON lines are staged in (see ``part_count``);
        rows too few to split are not worth asking the cluster its slices."""
        if total_bytes < 2 * self.staging_min_part_bytes:
            return 1
        return part_count(
            total_bytes, self.slices(), self.staging_part_bytes, self.staging_min_part_bytes
        )

    def slices(self) -> int:
        """The cluster's slices: COPY loads one file per slice at a time."""
        if self.serverless:
            return self.serverless_slices
        [count] = self.statements.get("count_slices")
        return max(1, int(self.query(count).scalar()))

    def stage(self, table: str, paths: Sequence[Path]) -> StagedLoad:
        """Upload the rows (gzipped JSON lines), split into files for every slice to load
        its share, in parallel, and a manifest naming exactly those objects."""
        prefix = self.staging_prefix()
        count = self.staged_parts(sum(path.stat().st_size for path in paths))
        parts = tuple(
            StagedPart(
                paths[0].with_name(f"{paths[0].name}.{table}-{n:04d}.json.gz"),
                f"{prefix}/{table}-{n:04d}.json.gz",
            )
            for n in range(count)
        )
        rows = write_copy_input(table, paths, [part.local for part in parts])
        with ThreadPoolExecutor(min(self.upload_threads, count)) as pool:
            list(pool.map(lambda part: self.upload(part.local, part.url), parts))
        entries = [(part.url, part.local.stat().st_size) for part in parts]
        return StagedLoad(table, parts, rows, self.write_manifest(table, entries))

    def upload(self, local: Path, url: str) -> None:
        """One PUT, or a multipart upload above ``multipart_bytes`` (one PUT stops at 5 GB)."""
        aws, (bucket, key) = self.aws(), _split_s3(url)
        if local.stat().st_size <= self.multipart_bytes:
            with local.open("rb") as body:
                aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=body)
            return
        upload = aws.call("s3", "create_multipart_upload", Bucket=bucket, Key=key)["UploadId"]
        target = {"Bucket": bucket, "Key": key, "UploadId": upload}
        try:
            done: list[dict[str, Any]] = []
            with local.open("rb") as body:
                while chunk := body.read(self.multipart_bytes):
                    number = len(done) + 1
                    sent = aws.call("s3", "upload_part", PartNumber=number, Body=chunk, **target)
                    done.append({"ETag": sent["ETag"], "PartNumber": number})
            aws.call("s3", "complete_multipart_upload", MultipartUpload={"Parts": done}, **target)
        except BaseException:
            with contextlib.suppress(SparkifyError):
                aws.call("s3", "abort_multipart_upload", **target)
            raise

    def run_copy(self, staged: StagedLoad) -> int:
        """COPY the manifest's objects; returns the rows Redshift loaded."""
        role, region = self.copy_options()
        manifest = _literal(staged.manifest_url, _S3_URL, "the manifest URL")
        self.execute(self.s3_copy_sql(staged.table, manifest, role, region))
        [count] = self.statements.get("copy_count")
        return int(self.query(count).scalar())

    def load_failure(self, staged: StagedLoad, loaded: int) -> WarehouseError:
        """Why rows were left out: file, line, column, value and reason, per rejected line."""
        [has_detail] = self.statements.get("has_load_error_detail")
        name = "load_errors" if self.query(has_detail).scalar() else "load_errors_stl"
        [load_errors] = self.statements.get(name)
        details = []
        for part in staged.parts:
            found = self.query(load_errors, {"url": part.url})
            lines = gzip.decompress(part.local.read_bytes()).splitlines()
            for file, line, column, value, code, reason in found.rows:
                source = ""
                if 0 < int(line) <= len(lines):
                    row = orjson.loads(lines[int(line) - 1])
                    source = f" (source file_id {row.get('file_id')} line {row.get('line_no')})"
                    if value is None:
                        value = str(row.get(column, ""))
                shown = (value or "")[:60]
                details.append(
                    f"{file} line {line}{source}, column {column}, value {shown!r}: "
                    f"{reason} ({code})"
                )
        rejected = staged.rows - loaded
        return WarehouseError(
            f"Redshift rejected {rejected} of {staged.rows} rows loading {staged.table}; the run "
            f"was rolled back and the staged files under {self.staging_prefix()} kept for "
            "inspection. " + ("; ".join(details) or "no detail in the load error log")
        )


def insert_batches(
    rows: Sequence[tuple], width: int, max_parameters: int, max_bytes: int
) -> Iterator[Sequence[tuple]]:
    """Consecutive slices of ``rows`` (of ``width`` values each) holding at most
    ``max_parameters`` values and ``max_bytes`` of text; a row larger than that goes alone."""
    per_batch = max(1, max_parameters // width)
    start, size = 0, 0
    for n, row in enumerate(rows):
        row_bytes = sum(len(v.encode()) if isinstance(v, str) else 8 for v in row)
        if n > start and (n - start == per_batch or size + row_bytes > max_bytes):
            yield rows[start:n]
            start, size = n, 0
        size += row_bytes
    if start < len(rows):
        yield rows[start:]


def write_copy_input(table: str, paths: Sequence[Path], targets: Sequence[Path]) -> int:
    """The canonical JSON lines of ``paths``, dealt in turn to the gzip files ``targets``
    (so they come out the same size), with COPY_DERIVED keys added. Returns the rows."""
    derived = COPY_DERIVED.get(table, {})
    rows = 0
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(gzip.open(t, "wb", compresslevel=5)) for t in targets]
        for path in paths:
            with path.open("rb") as source:
                for line in source:
                    if not line.strip():
                        continue
                    if derived:
                        row = orjson.loads(line)
                        row.update({column: row.get(key) for column, key in derived.items()})
                        line = orjson.dumps(row) + b"\n"
                    sinks[rows % len(sinks)].write(line if line.endswith(b"\n") else line + b"\n")
                    rows += 1
    return rows

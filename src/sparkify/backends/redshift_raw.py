"""Redshift reads the run's raw S3 files itself: COPY, then validation in set-based SQL.

For an ``s3://`` source file at least ``[S3] RAW_COPY_MIN_BYTES`` big, nothing passes through
the client: the ledger's fingerprint is the listing's ETag, a manifest naming exactly that
object goes under ``[S3] STAGING_PREFIX``, and COPY lands its lines, one VARCHAR(65535) row per
line, in a landing table of its own. Smaller files (the song catalogue's one-record files) are
parsed by the Python parser as before: per file, a COPY costs more than reading it.

Landing, all slices at once. Before the run's transaction, the listed raw files that the
ledger does not hold are COPYed by several sessions at once (``[CLUSTER] RAW_COPY_SESSIONS``,
by default the cluster's slices, at most 16), each file in a transaction of its own, into a
table named after the object's ETag and size (``raw_landing_<hash>``). A Redshift COPY of one
file keeps one slice busy, and COPYs into one table would be serialized; one table per file
and several sessions keep every slice loading. The run's transaction only reads the landing
tables (their commits precede its snapshot) and drops them: a failed or killed run leaves them
for the next run, which drops those no listed file needs. A landing table that another run
dropped meanwhile is landed again inside the run's transaction.

Line numbers. COPY records neither the file nor the line a row came from. One table per file
gives the file; within it, the ``IDENTITY`` column numbers the rows in the order the slice
read them (one slice reads one file, front to back), and the lines COPY refused (read back
from ``sys_load_error_detail`` with their line numbers) are put back in between. Blank lines
are loaded too (no IGNOREBLANKLINES), so the numbers are the file's physical line numbers, as
on every other backend. Redshift may split an uncompressed file of 128 MB or more into scan
ranges loaded by several slices, and then the numbering is lost: after each COPY the landing
asks the load detail in how many ranges the file was read, and a split file's landing table
is dropped and the file parsed by sparkify instead (``split_landings``), so its rows and
rejects stay those of every other backend. docs/redshift.md discusses the choice and what
AWS guarantees.

The landed lines then become records and are checked by the SQL of ``redshift_checks``
(same reasons as ``sparkify.records`` wherever SQL can say them); accepted records wait in
``checked_<kind>`` until the pipeline bulk-loads the kind, and the rejects come back as
``Reject`` objects, so counting, ``--max-errors`` and ``etl_rejects`` work as for parsed files.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from sparkify.backends.base import Params, Sent, has_parameters, quote_identifier
from sparkify.backends.redshift_checks import (
    PARSE_SQL,
    check_sql,
    records_sql,
    staged_insert_sql,
    unknown_fields_sql,
)
from sparkify.errors import ConfigError, TooManyRejects, WarehouseError
from sparkify.parsing import FileParse, Parser
from sparkify.progress import Advance, ProgressFactory
from sparkify.reconcile import KnownFile
from sparkify.records import Reject
from sparkify.sources import Source, SourceFile

if TYPE_CHECKING:
    from sparkify.backends.redshift import RedshiftBackend

log = logging.getLogger(__name__)

MAX_COPY_ERRORS = 100_000  # the largest MAXERROR Redshift accepts
# AWS: an uncompressed delimited file of 128 MB or more may be split into scan ranges.
SPLIT_MIN_BYTES = 128_000_000
DEFAULT_RAW_COPY_MIN_BYTES = 1024 * 1024
LANDING_PREFIX = "raw_landing_"
LANDING_PLACEHOLDER = '"raw_landing_<key>"'  # the landing table in sql/redshift_load.sql
LANDING_COLUMNS = ("refused_line", "reason")  # the lines COPY refused, added after it


def raw_copy_min_bytes(value: str | None) -> int | None:
    """``[S3] RAW_COPY_MIN_BYTES``: a size in bytes, or None for ``off``."""
    text = (value or "").strip().lower()
    if text == "off":
        return None
    if not text:
        return DEFAULT_RAW_COPY_MIN_BYTES
    if not text.isdigit():
        raise ConfigError(f"[S3] RAW_COPY_MIN_BYTES must be a size in bytes or off: {value!r}")
    return int(text)


def copies_raw(min_bytes: int | None, source: Source, file: SourceFile) -> bool:
    """Whether Redshift reads ``file`` itself: on S3, with an ETag, at least ``min_bytes``."""
    return (
        min_bytes is not None
        and file.size >= min_bytes
        and file.etag is not None
        and file.url.startswith("s3://")
        and getattr(source, "protocol", "") == "s3"
    )


def landing_table(file: SourceFile) -> str:
    """The landing table of an object's content: a hash of its ETag and size."""
    digest = hashlib.sha256(f"{file.etag}\0{file.size}".encode()).hexdigest()
    return LANDING_PREFIX + digest[:32]


def with_landing(sql: str, table: str) -> str:
    """A statement of sql/redshift_load.sql naming ``table`` (a generated name, quoted)."""
    return sql.replace(LANDING_PLACEHOLDER, quote_identifier(table))


def run_landing(backend: RedshiftBackend, name: str, table: str, params: Params = None) -> None:
    for sql in backend.statements.get(name):
        backend.execute(with_landing(sql, table), params)


def landings(backend: RedshiftBackend) -> set[str]:
    """The landing tables in the warehouse's schema."""
    return {name for name in backend.existing_tables() if name.startswith(LANDING_PREFIX)}


# -- before the run's transaction ------------------------------------------------------------
def land_before_run(
    backend: RedshiftBackend,
    listed: Sequence[tuple[Source, Sequence[SourceFile]]],
    max_errors: int,
    progress: ProgressFactory,
) -> None:
    """Land the listed raw files whose content the ledger does not hold, several sessions at
    once; drop the landing tables no listed file needs. The ledger is read outside the run's
    transaction: if it changes meanwhile, the run lands what it lacks itself, and drops what
    it does not need."""
    min_bytes = raw_copy_min_bytes(backend.settings.get("S3", "RAW_COPY_MIN_BYTES"))
    raw = [f for source, files in listed for f in files if copies_raw(min_bytes, source, f)]
    if not raw:
        return
    [ledger] = backend.statements.get("read_ledger")
    known = {row[0]: KnownFile.from_row(row) for row in backend.query(ledger).rows}
    wanted: dict[str, SourceFile] = {}
    for file in raw:
        old = known.get(file.url)
        if old is None or not old.has_content_of(file):
            wanted.setdefault(landing_table(file), file)
    existing = landings(backend)
    for stale in sorted(existing - set(wanted)):
        run_landing(backend, "drop_landing", stale)
    todo = [file for table, file in wanted.items() if table not in existing]
    if not todo:
        return
    description = f"Landing raw files ({len(todo):,} files)"
    with progress(description, total=sum(f.size for f in todo), unit="bytes") as advance:
        land_in_parallel(backend, todo, backend.raw_copy_sessions(), max_errors, advance)


def land_in_parallel(
    backend: RedshiftBackend,
    files: Sequence[SourceFile],
    sessions: int,
    max_errors: int,
    advance: Advance,
) -> None:
    """Each file COPYed into its landing table by one of ``sessions`` sessions, each file in
    a transaction of its own. The first failure stops the rest: files not started are left,
    running COPYs are cancelled (their transactions roll back), and the failure is raised."""
    local = threading.local()
    opened: list[RedshiftBackend] = []
    stopped = threading.Event()

    def land(file: SourceFile) -> None:
        if stopped.is_set():
            return
        session = getattr(local, "session", None)
        if session is None:
            session = backend.landing_session()
            opened.append(session)
            local.session = session
            if stopped.is_set():  # stopped while this session connected
                return
        with session.transaction():
            if not land_file(session, file, max_errors):
                backend.split_landings.add(landing_table(file))

    pool = ThreadPoolExecutor(min(sessions, len(files)), thread_name_prefix="sparkify-landing")
    try:
        futures: dict[Future[None], SourceFile] = {pool.submit(land, f): f for f in files}
        for future in as_completed(futures):
            future.result()
            advance(futures[future].size, files=1)
    except BaseException:
        stopped.set()
        for session in list(opened):
            session.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for session in opened:
            session.close()


def land_file(session: RedshiftBackend, file: SourceFile, max_errors: int) -> bool:
    """CREATE the file's landing table, COPY the file into it through a manifest naming only
    it, and add the lines COPY refused (line number and reason). False, with the table
    dropped, when Redshift read the file in several scan ranges: its lines' order is lost."""
    table = landing_table(file)
    manifest = session.write_manifest(table, [(file.url, file.size)])
    run_landing(session, "create_landing", table)
    copy_max_errors = min(max_errors, MAX_COPY_ERRORS)
    try:
        session.copy_raw(quote_identifier(table), manifest, copy_max_errors)
    except WarehouseError as exc:
        # Redshift words a COPY that went past MAXERROR "Load into table ... failed".
        if "Load into table" in str(exc):
            raise TooManyRejects(
                f"Redshift refused more than --max-errors {max_errors} lines of {file.url} "
                f"(MAXERROR {copy_max_errors}); the run was rolled back. See "
                "sys_load_error_detail for the lines and reasons."
            ) from None
        raise type(exc)(f"COPY of {file.url} failed: {exc}", exc.sqlstate) from None
    ranges = scan_ranges(session, file.url)
    if ranges > 1 or (ranges == 0 and file.size >= SPLIT_MIN_BYTES):
        run_landing(session, "drop_landing", table)
        read = f"in {ranges} scan ranges" if ranges else "without a load detail to say how"
        log.warning(
            "%s: Redshift read the file %s, so its line numbers are lost; sparkify parses "
            "it instead (files under 128 MB stay on Redshift's raw path)",
            file.url,
            read,
        )
        return False
    [errors_sql] = session.statements.get("raw_copy_errors")
    refused = session.query(errors_sql, {"url": file.url}).rows
    reasons = [(int(n), f"COPY refused the line: {why} ({code})") for n, code, why in refused]
    session.insert_rows(table, LANDING_COLUMNS, reasons)
    return True


def scan_ranges(session: RedshiftBackend, url: str) -> int:
    """In how many scan ranges the session's last COPY read ``url`` (0: not recorded), from
    ``sys_load_detail``, or ``stl_load_commits`` where the catalog lacks that view."""
    [has_detail] = session.statements.get("has_load_detail")
    name = "raw_copy_ranges" if session.query(has_detail).scalar() else "raw_copy_ranges_stl"
    [ranges] = session.statements.get(name)
    return int(session.query(ranges, {"url": url}).scalar() or 0)


# -- in the run's transaction ----------------------------------------------------------------
class RawCopyParser(Parser):
    """A ``Parser`` that hands big S3 files to Redshift and parses the rest in Python."""

    def __init__(
        self, scratch: Path, row_format: str, backend: RedshiftBackend, max_errors: int
    ) -> None:
        super().__init__(scratch, row_format)
        self.backend = backend
        self.max_errors = max_errors
        self.min_bytes = raw_copy_min_bytes(backend.settings.get("S3", "RAW_COPY_MIN_BYTES"))
        self._landed: set[str] | None = None  # landing tables, once the first raw file comes
        self._read: set[str] = set()  # the landing tables this run read

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._landed is not None and exc[0] is None:
            self.backend.run("drop_raw_tables")
            for table in sorted(self._read):
                run_landing(self.backend, "drop_landing", table)

    def parse(
        self,
        source: Source,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        loaded: dict[str, str],
        advance: Advance,
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        raw = [f for f in files if copies_raw(self.min_bytes, source, f) and self.whole(f)]
        landed = {f.url for f in raw}
        rest = [f for f in files if f.url not in landed]
        if rest:
            yield from super().parse(source, kind, rest, file_ids, loaded, advance)
        if raw:
            yield from self.land(kind, raw, file_ids, advance)

    def whole(self, file: SourceFile) -> bool:
        """Whether ``file`` has a landing table read in one scan range; one that is gone
        (another run dropped it) is landed first, in the run's transaction."""
        backend = self.backend
        if self._landed is None:
            backend.run("create_raw_tables")
            self._landed = landings(backend)
        table = landing_table(file)
        if table in backend.split_landings:
            return False
        if table not in self._landed:
            if not land_file(backend, file, self.max_errors):
                backend.split_landings.add(table)
                return False
            self._landed.add(table)
        return True

    def land(
        self,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        advance: Advance,
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        """Read each file's landing table, turn the lines into records, check them; one
        FileParse each."""
        backend = self.backend
        for file in files:
            table = landing_table(file)
            run_landing(backend, "land_raw_file", table, {"file_id": file_ids[file.url]})
            self._read.add(table)
            advance(file.size, files=1)
        for sql in (records_sql(kind), PARSE_SQL, check_sql(kind), staged_insert_sql(kind)):
            backend.execute(sql)
        [counts_sql] = backend.statements.get("raw_checked_counts")
        counts = {
            int(file_id): (int(records), int(accepted), int(refused))
            for file_id, records, accepted, refused in backend.query(counts_sql).rows
        }
        unknown: dict[int, dict[str, int]] = {}
        for file_id, name, count in backend.query(unknown_fields_sql(kind)).rows:
            unknown.setdefault(int(file_id), {})[str(name)] = int(count)
        rejects: dict[int, list[Reject]] = {}
        [listing] = backend.statements.get("raw_rejects")
        for file_id, line_no, reason, raw in backend.query(
            listing, {"limit": self.max_errors + 1}
        ).rows:
            rejects.setdefault(int(file_id), []).append(Reject(int(line_no), reason, raw or ""))
        backend.run("clear_raw_tables")
        marker = self.scratch / f"{kind}.landed"
        for file in files:
            file_id = file_ids[file.url]
            records, accepted, refused = counts.get(file_id, (0, 0, 0))
            fields = unknown.get(file_id, {})
            yield (
                file,
                FileParse(
                    fingerprint=file.etag or "",
                    lines_read=records + refused,
                    rows_staged=accepted,
                    rejects=rejects.get(file_id, []),
                    part=backend.landed(marker, kind) if accepted else None,
                    unknown_fields=dict(sorted(fields.items(), key=lambda f: (-f[1], f[0]))),
                ),
            )


# -- what the dry run shows (``sparkify sql``) --------------------------------------------------
def _named(backend: type[RedshiftBackend], name: str, *when: str) -> list[Sent]:
    return [
        Sent(backend.driver_sql(sql, has_parameters(sql)), when)
        for sql in backend.dialect_statements().get(name)
    ]


def _landing_copy(backend: type[RedshiftBackend], *when: str) -> list[Sent]:
    """Landing one file: its table, the COPY, the scan ranges it was read in, then the
    refused lines read back and added (or, for a split file, the table dropped)."""
    manifest = "'s3://<STAGING_PREFIX>/<run>/raw_landing_<key>.manifest'"
    copy = backend.raw_copy_sql(
        LANDING_PLACEHOLDER, manifest, "'<[IAM_ROLE] ARN>'", "'<[AWS] REGION>'", 1000
    )
    refused = backend.insert_sql("raw_landing_<key>", LANDING_COLUMNS)
    whole = (*when, "whole_file")
    return [
        *_named(backend, "create_landing", *when),
        Sent(copy, when),
        *_named(backend, "has_load_detail", *when),
        *_named(backend, "raw_copy_ranges", *when, "load_detail"),
        *_named(backend, "raw_copy_ranges_stl", *when, "no_load_detail"),
        *_named(backend, "drop_landing", *when, "split_file"),
        *_named(backend, "raw_copy_errors", *whole),
        Sent(refused, whole),
    ]


def landing_statements(backend: type[RedshiftBackend]) -> list[Sent]:
    """Before the run's transaction: the ledger and the landing tables, the stale ones
    dropped, then each file landed by one of several sessions, in a transaction each."""
    landing = ("raw_landing",)
    each = (*landing, "each_landing")
    return [
        *_named(backend, "read_ledger", *landing),
        *_named(backend, "existing_tables", *landing),
        *_named(backend, "drop_landing", *landing, "stale_landings"),
        *_named(backend, "count_slices", *landing),
        Sent(backend.begin_sql, each),
        *_landing_copy(backend, *each),
        Sent(backend.commit_sql, each),
    ]


def raw_statements(backend: type[RedshiftBackend], kind: str) -> list[Sent]:
    """The raw path of one kind in the run's transaction: each file's landed lines read,
    then the checks of all the run's files of that kind, then their rows into staging."""
    checks = [records_sql(kind), PARSE_SQL, check_sql(kind), staged_insert_sql(kind)]
    raw = ("raw_files",)
    return [
        *_named(backend, "create_raw_tables", *raw, "first_raw_files"),
        *_named(backend, "existing_tables", *raw, "first_raw_files"),
        *_landing_copy(backend, *raw, "each_raw_file", "landing_gone"),
        *_named(backend, "land_raw_file", *raw, "each_raw_file", "whole_file"),
        *(Sent(sql, raw) for sql in checks),
        *_named(backend, "raw_checked_counts", *raw),
        Sent(unknown_fields_sql(kind), raw),
        *_named(backend, "raw_rejects", *raw),
        *_named(backend, "clear_raw_tables", *raw),
        *_named(backend, f"count_checked_{kind}", *raw),
        *_named(backend, f"stage_checked_{kind}", *raw),
    ]


def end_parse_statements(backend: type[RedshiftBackend]) -> list[Sent]:
    """The raw path's temporary tables, then each landing table the run read."""
    return [
        *_named(backend, "drop_raw_tables", "raw_files"),
        *_named(backend, "drop_landing", "raw_files", "each_raw_file"),
    ]

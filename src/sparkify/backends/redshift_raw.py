"""Redshift reads the run's raw S3 files itself: COPY, then validation in set-based SQL.

For an ``s3://`` source file at least ``[S3] RAW_COPY_MIN_BYTES`` big, nothing passes through
the client: the ledger's fingerprint is the listing's ETag, a manifest naming exactly that
object goes under ``[S3] STAGING_PREFIX``, and COPY lands its lines, one VARCHAR(65535) row per
line, in the temporary table ``raw_file``. Smaller files (the song catalogue's one-record
files) are parsed by the Python parser as before: per file, a COPY costs more than reading
it.

Line numbers. COPY records neither the file nor the line a row came from. One COPY per file
gives the file; within it, the ``IDENTITY`` column numbers the rows in the order the slice
read them (one slice reads one file, front to back), and the lines COPY refused (read back
from ``sys_load_error_detail`` with their line numbers) are put back in between. Blank lines
are loaded too (no IGNOREBLANKLINES), so the numbers are the file's physical line numbers, as
on every other backend. docs/redshift.md discusses the choice and its cost.

The landed lines then become records and are checked by the SQL of ``redshift_checks``
(same reasons as ``sparkify.records`` wherever SQL can say them); accepted records wait in
``checked_<kind>`` until the pipeline bulk-loads the kind, and the rejects come back as
``Reject`` objects, so counting, ``--max-errors`` and ``etl_rejects`` work as for parsed files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sparkify.backends.redshift_checks import (
    PARSE_SQL,
    check_sql,
    records_sql,
    staged_insert_sql,
)
from sparkify.errors import ConfigError, TooManyRejects, WarehouseError
from sparkify.parsing import FileParse, Parser
from sparkify.progress import Advance
from sparkify.records import Reject
from sparkify.sources import Source, SourceFile

if TYPE_CHECKING:
    from sparkify.backends.redshift import RedshiftBackend

MAX_COPY_ERRORS = 100_000  # the largest MAXERROR Redshift accepts
DEFAULT_RAW_COPY_MIN_BYTES = 1024 * 1024


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


class RawCopyParser(Parser):
    """A ``Parser`` that hands big S3 files to Redshift and parses the rest in Python."""

    def __init__(
        self, scratch: Path, row_format: str, backend: RedshiftBackend, max_errors: int
    ) -> None:
        super().__init__(scratch, row_format)
        self.backend = backend
        self.max_errors = max_errors
        self.min_bytes = raw_copy_min_bytes(backend.settings.get("S3", "RAW_COPY_MIN_BYTES"))
        self._created = False

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._created and exc[0] is None:
            self.backend.run("drop_raw_tables")

    def copies_raw(self, source: Source, file: SourceFile) -> bool:
        return (
            self.min_bytes is not None
            and file.size >= self.min_bytes
            and file.etag is not None
            and file.url.startswith("s3://")
            and getattr(source, "protocol", "") == "s3"
        )

    def parse(
        self,
        source: Source,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        loaded: dict[str, str],
        advance: Advance,
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        raw = [f for f in files if self.copies_raw(source, f)]
        rest = [f for f in files if not self.copies_raw(source, f)]
        if rest:
            yield from super().parse(source, kind, rest, file_ids, loaded, advance)
        if raw:
            yield from self.land(kind, raw, file_ids, advance)

    def land(
        self,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        advance: Advance,
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        """COPY each file, turn its lines into records, check them; one FileParse each."""
        backend = self.backend
        if not self._created:
            backend.run("create_raw_tables")
            self._created = True
        refused: dict[int, list[tuple[int, str]]] = {}
        for file in files:
            file_id = file_ids[file.url]
            refused[file_id] = self.copy_file(file, file_id)
            advance(file.size, files=1)
        backend.execute(records_sql(kind))
        backend.execute(PARSE_SQL)
        backend.execute(check_sql(kind))
        backend.execute(staged_insert_sql(kind))
        counts = {
            int(file_id): (int(records), int(accepted))
            for file_id, records, accepted in backend.query(
                backend.statements.get("raw_checked_counts")[0]
            ).rows
        }
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
            records, accepted = counts.get(file_id, (0, 0))
            yield (
                file,
                FileParse(
                    fingerprint=file.etag or "",
                    lines_read=records + len(refused[file_id]),
                    rows_staged=accepted,
                    rejects=rejects.get(file_id, []),
                    part=backend.landed(marker, kind) if accepted else None,
                ),
            )

    def copy_file(self, file: SourceFile, file_id: int) -> list[tuple[int, str]]:
        """COPY one raw file into raw_file, then into raw_lines with its line numbers.
        Returns the lines COPY refused: (line number, reason)."""
        backend = self.backend
        manifest = backend.write_manifest(f"raw-{file_id}", [(file.url, file.size)])
        max_errors = min(self.max_errors, MAX_COPY_ERRORS)
        try:
            backend.copy_raw(manifest, max_errors)
        except WarehouseError as exc:
            # Redshift words a COPY that went past MAXERROR "Load into table ... failed".
            if "Load into table" not in str(exc):
                raise
            raise TooManyRejects(
                f"Redshift refused more than --max-errors {self.max_errors} lines of "
                f"{file.url} (MAXERROR {max_errors}); the run was rolled back. See "
                "sys_load_error_detail for the lines and reasons."
            ) from None
        [errors_sql] = backend.statements.get("raw_copy_errors")
        errors = [
            (int(line), f"COPY refused the line: {reason} ({code})")
            for line, code, reason in backend.query(errors_sql, {"url": file.url}).rows
        ]
        backend.insert_rows(
            "raw_refused",
            ("file_id", "line_no", "loaded_before", "reason"),
            [
                (file_id, line, line - n, reason)
                for n, (line, reason) in enumerate(sorted(errors), start=1)
            ],
        )
        backend.run("land_raw_file", {"file_id": file_id})
        return errors

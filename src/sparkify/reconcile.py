"""The source against the ledger, beyond new and changed files: files that moved and files
that disappeared.

A file the ledger knows, no longer at its URL, whose content turns up at a new URL of the
same kind, has **moved**: its ledger row follows it to the new URL and nothing is staged
again. The content is recognised by the fingerprint the ledger keeps (the ETag on object
stores, known from the listing; a BLAKE2b hash of the bytes otherwise, computed only for new
files whose size is that of a vanished one). A known file that is neither listed nor found
elsewhere has **disappeared**: the run reports it, and only ``etl --prune`` removes its rows.
With ``--since``/``--until``, event files outside the window are not looked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sparkify.sources import Source, SourceFile, filter_by_date, fingerprint


@dataclass(frozen=True)
class KnownFile:
    """One row of the ledger (``etl_files``), in the order ``read_ledger`` selects it."""

    url: str
    file_id: int
    size: int
    version: str
    fingerprint: str
    kind: str
    first_run_id: int
    last_run_id: int
    lines_read: int
    rows_staged: int
    rows_rejected: int

    def has_content_of(self, file: SourceFile) -> bool:
        """Whether the content this ledger row loaded is what ``file`` (at its URL) holds:
        the same size and change token, or the same ETag."""
        same_version = self.size == file.size and self.version == file.version
        return same_version or bool(file.etag and file.etag == self.fingerprint)

    @classmethod
    def from_row(cls, row: Sequence[object]) -> KnownFile:
        url, file_id, size, version, digest, kind, *counts = row
        first, last, lines, staged, rejected = (int(str(n)) for n in counts)
        return cls(
            str(url), int(str(file_id)), int(str(size)), str(version), str(digest), str(kind),
            first, last, lines, staged, rejected,
        )  # fmt: skip


@dataclass(frozen=True)
class Move:
    """A known file's content found at a new URL."""

    known: KnownFile
    file: SourceFile

    def ledger_row(self) -> tuple[object, ...]:
        """The file's ledger row at its new URL (columns of ``plan.LEDGER_COLUMNS``)."""
        k = self.known
        return (
            k.file_id, self.file.url, k.kind, self.file.size, self.file.version, k.fingerprint,
            k.first_run_id, k.last_run_id, k.lines_read, k.rows_staged, k.rows_rejected,
        )  # fmt: skip


def vanished(
    known: Iterable[KnownFile],
    listed: Mapping[str, Iterable[SourceFile]],
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[KnownFile]:
    """Known files of each kind that the listing of that kind does not hold, by URL;
    event files outside [since, until] are not looked for."""
    urls = {kind: {file.url for file in files} for kind, files in listed.items()}
    gone = [k for k in known if k.url not in urls.get(k.kind, ())]
    events = [SourceFile(k.url, k.size, k.version) for k in gone if k.kind == "events"]
    in_window = {file.url for file in filter_by_date(events, since, until)}
    return sorted(
        (k for k in gone if k.kind != "events" or k.url in in_window), key=lambda k: k.url
    )


def find_moves(
    kind: str, source: Source, new: Sequence[SourceFile], gone: list[KnownFile]
) -> list[Move]:
    """New files of ``kind`` whose content is that of a vanished file of that kind. Each
    vanished file moves at most once, and is then taken out of ``gone``."""
    by_size: dict[int, list[KnownFile]] = {}
    for known in gone:
        if known.kind == kind:
            by_size.setdefault(known.size, []).append(known)
    moves = []
    for file in new:
        candidates = by_size.get(file.size)
        if not candidates:
            continue
        digest = file.etag or fingerprint(source.read(file))
        match = next((k for k in candidates if k.fingerprint == digest), None)
        if match is not None:
            candidates.remove(match)
            gone.remove(match)
            moves.append(Move(match, file))
    return moves

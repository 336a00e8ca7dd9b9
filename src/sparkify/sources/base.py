"""What every source shares: a listed file (``SourceFile``), the ``Source`` interface, the
content fingerprint, the filter on the date in event file names, and the rule for entries a
listing leaves out (``IgnoredFile``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# etl_files.url holds this many bytes on every backend (Redshift counts VARCHAR in bytes).
MAX_URL_BYTES = 1024


@dataclass(frozen=True)
class SourceFile:
    url: str
    size: int
    version: str  # changes when the content may have changed (mtime, ETag)
    etag: str | None = None  # a content fingerprint known without reading (object stores)

    @property
    def event_date(self) -> dt.date | None:
        """The day in an event file's name (``2018-11-01-events.json``), if any."""
        match = _DATE_IN_NAME.search(self.url.rsplit("/", 1)[-1])
        if not match:
            return None
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            return None


@dataclass(frozen=True)
class IgnoredFile:
    """A ``.json`` entry a listing left out, and why; ``url`` is printable (``printable``)."""

    url: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"url": self.url, "reason": self.reason}


def ledger_problem(url: str) -> str | None:
    """Why ``url`` cannot be recorded in the file ledger, or None. The same rule holds on
    every backend: the URL must be valid UTF-8 and at most MAX_URL_BYTES long."""
    try:
        size = len(url.encode("utf-8"))
    except UnicodeEncodeError:
        return "the path is not valid UTF-8 (rename it to load it)"
    if size > MAX_URL_BYTES:
        return f"the URL is longer than {MAX_URL_BYTES:,} bytes, the most the ledger holds"
    return None


def fingerprint(data: bytes) -> str:
    return fingerprint_of(start_fingerprint(data))


def start_fingerprint(data: bytes = b"") -> hashlib.blake2b:
    """A fingerprint to feed a file's bytes in pieces (``update``), then ``fingerprint_of``."""
    return hashlib.blake2b(data, digest_size=16)


def fingerprint_of(hasher: hashlib.blake2b) -> str:
    return "blake2b:" + hasher.hexdigest()


class Source:
    """Raw files under one location. Subclasses implement listing and reading."""

    location: str
    read_in_workers = False  # True: parse workers may call ``read`` themselves
    ignored: tuple[IgnoredFile, ...] = ()  # what the last listing left out, and why

    def list_files(self) -> list[SourceFile]:
        """The ``.json`` files, sorted by URL; sets ``ignored``."""
        raise NotImplementedError

    def read(self, file: SourceFile) -> bytes:
        raise NotImplementedError

    def read_chunks(self, file: SourceFile, size: int) -> Iterator[bytes]:
        """The file's bytes in pieces of about ``size`` bytes (sources that can stream)."""
        yield self.read(file)

    def read_many(self, files: Iterable[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
        """Contents in the order given; object stores override this to read concurrently."""
        for file in files:
            yield file, self.read(file)


def filter_by_date(
    files: list[SourceFile], since: dt.date | None, until: dt.date | None
) -> list[SourceFile]:
    """Event files whose name carries a date within [since, until]; all files when unbounded."""
    if since is None and until is None:
        return files
    kept = []
    for file in files:
        day = file.event_date
        if day is None:
            continue
        if (since and day < since) or (until and day > until):
            continue
        kept.append(file)
    return kept

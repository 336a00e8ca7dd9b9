"""Finding and reading raw files: local folders and ``file://`` URLs here, object stores in
``sparkify.objectstore``. A source lists its ``.json`` files once, with a cheap change token
(modification time or ETag) so the ledger can skip unchanged files without reading them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from sparkify.config import Settings
from sparkify.errors import SourceError

_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


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


def fingerprint(data: bytes) -> str:
    return "blake2b:" + hashlib.blake2b(data, digest_size=16).hexdigest()


class Source:
    """Raw files under one location. Subclasses implement listing and reading."""

    location: str
    read_in_workers = False  # True: parse workers may call ``read`` themselves

    def list_files(self) -> list[SourceFile]:
        raise NotImplementedError

    def read(self, file: SourceFile) -> bytes:
        raise NotImplementedError

    def read_many(self, files: Iterable[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
        """Contents in the order given; object stores override this to read concurrently."""
        for file in files:
            yield file, self.read(file)


class LocalSource(Source):
    read_in_workers = True  # a path is all a worker needs

    def __init__(self, location: str) -> None:
        self.location = location
        parsed = urlparse(location)
        raw = unquote(parsed.path) if parsed.scheme == "file" else location
        self.root = Path(raw).expanduser()

    def list_files(self) -> list[SourceFile]:
        if not self.root.exists():
            raise SourceError(f"no such file or directory: {self.location}")
        root = self.root.resolve()  # once: a realpath per file costs more than the listing
        if root.is_file():
            stat = root.stat()
            return [SourceFile(str(root), stat.st_size, str(stat.st_mtime_ns))]
        files = [
            SourceFile(entry.path, stat.st_size, str(stat.st_mtime_ns))
            for entry in _walk_json(str(root))
            for stat in (entry.stat(),)
        ]
        files.sort(key=lambda f: f.url)
        return files

    def read(self, file: SourceFile) -> bytes:
        try:
            return Path(file.url).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {file.url}: {exc.strerror}") from None


def _walk_json(root: str) -> Iterator[os.DirEntry[str]]:
    """``.json`` files below ``root``, following folder links but never into a loop."""
    stack = [root]
    seen = {_identity(root)}
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    identity = _identity(entry.path)
                    if identity not in seen:
                        seen.add(identity)
                        stack.append(entry.path)
                elif entry.name.endswith(".json"):
                    yield entry


def _identity(folder: str) -> tuple[int, int]:
    stat = os.stat(folder)
    return stat.st_dev, stat.st_ino


def is_local(location: str) -> bool:
    scheme = urlparse(location).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def open_source(location: str, settings: Settings | None = None) -> Source:
    """A source for a local path, ``file://`` URL or object-store URL (``s3://`` ...)."""
    if is_local(location):
        return LocalSource(location)
    from sparkify.objectstore import ObjectStoreSource

    return ObjectStoreSource(location, settings)


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

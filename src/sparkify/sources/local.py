"""Raw files on the local file system: a folder, one file, or a ``file://`` URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from sparkify.errors import SourceError
from sparkify.sources.base import Source, SourceFile


def is_local(location: str) -> bool:
    scheme = urlparse(location).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


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

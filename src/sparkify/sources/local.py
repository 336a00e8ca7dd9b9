"""Raw files on the local file system: a folder, one file, or a ``file://`` URL."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from sparkify.errors import SourceError
from sparkify.sources.base import IgnoredFile, Source, SourceFile, ledger_problem
from sparkify.text import printable

_FILE_TYPES = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


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
        """Regular ``.json`` files below the root (or the root itself). Other entries named
        ``*.json`` (FIFOs, sockets, devices, broken links) and paths the ledger cannot hold
        are left out, each with its reason in ``ignored``."""
        if not self.root.exists():
            raise SourceError(f"no such file or directory: {printable(self.location)}")
        root = self.root.resolve()  # once: a realpath per file costs more than the listing
        if not root.is_dir():
            mode = root.stat().st_mode
            if not stat.S_ISREG(mode):
                kind = _file_type(mode)
                shown = printable(self.location)
                raise SourceError(f"not a regular file or folder ({kind}): {shown}")
        entries = [(str(root), root.stat())] if root.is_file() else _walk_json(str(root))
        files, ignored = [], []
        for path, found in entries:
            problem = _problem(path, found)
            if problem is not None:
                ignored.append(IgnoredFile(printable(path), problem))
            elif found is not None:
                files.append(SourceFile(path, found.st_size, str(found.st_mtime_ns)))
        files.sort(key=lambda f: f.url)
        self.ignored = tuple(sorted(ignored, key=lambda i: i.url))
        return files

    def read(self, file: SourceFile) -> bytes:
        """The file's bytes. It is opened without blocking and must still be a regular file,
        so an entry replaced by a FIFO after the listing cannot make the run wait. Plain
        system calls: a song file is read in fewer microseconds than a buffered file object
        takes to be made."""
        fd, size = _open_regular(file)
        try:
            # To the end, which only an empty read marks: a read may return less than asked
            # (over 2 GiB, on some file systems), and the file may have grown since.
            pieces = [os.read(fd, size + 1)]
            while pieces[-1]:
                pieces.append(os.read(fd, max(size, 1 << 20)))
        except OSError as exc:
            raise SourceError(f"cannot read {printable(file.url)}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return pieces[0] if len(pieces) == 2 else b"".join(pieces)

    def read_chunks(self, file: SourceFile, size: int) -> Iterator[bytes]:
        """The file's bytes in pieces of ``size`` bytes, opened as ``read`` says."""
        with open(_open_regular(file)[0], "rb") as handle:
            while True:
                try:
                    chunk = handle.read(size)
                except OSError as exc:
                    raise SourceError(
                        f"cannot read {printable(file.url)}: {exc.strerror}"
                    ) from None
                if not chunk:
                    return
                yield chunk


def _open_regular(file: SourceFile) -> tuple[int, int]:
    """A descriptor of ``file`` opened without blocking, if it is still a regular file, and
    the file's size."""
    try:
        fd = os.open(file.url, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise SourceError(f"cannot read {printable(file.url)}: {exc.strerror}") from None
    found = os.fstat(fd)
    mode = found.st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SourceError(
            f"cannot read {printable(file.url)}: not a regular file ({_file_type(mode)})"
        )
    return fd, found.st_size


def _problem(path: str, found: os.stat_result | None) -> str | None:
    """Why a listed entry is left out, or None."""
    if found is None:
        return "a broken link"
    if not stat.S_ISREG(found.st_mode):
        return f"not a regular file ({_file_type(found.st_mode)})"
    return ledger_problem(path)


def _file_type(mode: int) -> str:
    return next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")


def _walk_json(root: str) -> Iterator[tuple[str, os.stat_result | None]]:
    """Entries named ``*.json`` below ``root`` that are not folders, with their status
    (links followed; None for a broken link), following folder links but never into a
    loop."""
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
                    try:
                        yield entry.path, entry.stat()
                    except FileNotFoundError:
                        yield entry.path, None


def _identity(folder: str) -> tuple[int, int]:
    stat = os.stat(folder)
    return stat.st_dev, stat.st_ino

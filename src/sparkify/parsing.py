"""Reading, fingerprinting and parsing a run's files, in worker processes when there is much.

Files are handed out in tasks. A task reads its local files itself (an object store's bytes
are read by the main process and sent along), fingerprints them, parses those whose content
is not loaded yet and appends their canonical rows to its own part file in the run's scratch
folder. Only counts and rejects come back, so rows never pass through the main process, and
memory is bounded by the tasks in flight. A task reads an event file larger than
``CHUNK_BYTES`` in chunks cut at line ends, so a worker's memory does not grow with the size of
a file.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from sparkify.progress import Advance
from sparkify.records import PARSERS, Parsed, Reject, RowEncoder, count_unknown, parse_events
from sparkify.sources import (
    Source,
    SourceFile,
    fingerprint,
    fingerprint_of,
    start_fingerprint,
)
from sparkify.staging import KIND_TABLE, row_encoder

PARALLEL_PARSE_BYTES = 16 * 1024 * 1024  # below this, worker start-up costs more than it saves
# Handing a file to a worker (its task's share, the answer back) costs the main process about
# what reading and parsing this many bytes does: only the bytes beyond it are work a worker
# takes off it. A song file (about 250 bytes) is parsed in the main process whatever their
# number: the pool burnt 39 CPU-microseconds per song file in the workers to save the main
# process 18 (15,000 files).
HANDOFF_BYTES = 4096
READ_BATCH_BYTES = 256 * 1024 * 1024  # read ahead at most this much (bounds memory)
TASK_BYTES = 8 * 1024 * 1024  # files are grouped into tasks of about this size...
TASK_FILES = 2000  # ...and at most this many files
CHUNK_BYTES = 4 * 1024 * 1024  # a worker streams a larger event file in chunks of this size


@dataclass
class FileParse:
    """What reading one file gave: its fingerprint, and unless its content is already
    loaded, its counts, its rejects and the part file that holds its rows."""

    fingerprint: str
    unchanged: bool = False
    lines_read: int = 0
    rows_staged: int = 0
    rejects: list[Reject] = field(default_factory=list)
    part: Path | None = None
    unknown_fields: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FileInput:
    """One file of a task: its id, the fingerprint of the content already loaded from its
    URL (None when new), and its bytes unless the task reads them itself."""

    file: SourceFile
    file_id: int
    loaded_fingerprint: str | None
    data: bytes | None = None


def parse_task(
    kind: str, row_format: str, source: Source | None, files: list[FileInput], part: Path
) -> list[FileParse]:
    """Fingerprint and parse ``files``, appending the rows of each new content to ``part``
    in ``row_format``. Files sent without their bytes are read from ``source``."""
    parse = PARSERS[kind]
    encode = row_encoder(KIND_TABLE[kind], row_format)
    results = []
    rows = bytearray()  # written out in pieces of about CHUNK_BYTES (one per song file cost more)
    with part.open("ab") as out:
        for item in files:
            if item.data is None and kind == "events" and item.file.size > CHUNK_BYTES:
                assert source is not None
                out.write(rows)
                rows.clear()
                results.append(_stream_events(source, item, encode, out, part))
                continue
            data = item.data
            if data is None:
                assert source is not None
                data = source.read(item.file)
            digest = item.file.etag or fingerprint(data)
            if digest == item.loaded_fingerprint:
                results.append(FileParse(digest, unchanged=True))
                continue
            parsed = parse(data, item.file_id, encode)
            rows += parsed.data
            if len(rows) >= CHUNK_BYTES:
                out.write(rows)
                rows.clear()
            results.append(_file_parse(digest, parsed, part))
        out.write(rows)
    return results


def _file_parse(digest: str, parsed: Parsed, part: Path) -> FileParse:
    return FileParse(
        digest,
        lines_read=parsed.lines_read,
        rows_staged=parsed.rows_staged,
        rejects=parsed.rejects,
        part=part if parsed.rows_staged else None,
        unknown_fields=parsed.unknown_fields,
    )


def _stream_events(
    source: Source, item: FileInput, encode: RowEncoder, out: BinaryIO, part: Path
) -> FileParse:
    """Fingerprint and parse a large event file chunk by chunk, each cut after its last
    line end (what follows opens the next one); the lines, and so their verdicts and
    numbers, are those of the whole file. A file whose URL is known is fingerprinted first
    (one more read), so that the same content is not parsed."""
    if item.loaded_fingerprint is not None:
        hasher = start_fingerprint()
        for chunk in source.read_chunks(item.file, CHUNK_BYTES):
            hasher.update(chunk)
        if fingerprint_of(hasher) == item.loaded_fingerprint:
            return FileParse(item.loaded_fingerprint, unchanged=True)
    hasher = start_fingerprint()
    total = Parsed()
    line_no, rest = 1, b""
    for chunk in chain(source.read_chunks(item.file, CHUNK_BYTES), [b""]):  # b"": the end
        hasher.update(chunk)
        data = rest + chunk
        cut = data.rfind(b"\n") + 1 if chunk else len(data)
        if not cut:
            rest = data  # a line longer than a chunk: read on
            continue
        data, rest = data[:cut], data[cut:]
        parsed = parse_events(data, item.file_id, encode, line_no)
        line_no += data.count(b"\n")
        out.write(parsed.data)
        total.lines_read += parsed.lines_read
        total.rows_staged += parsed.rows_staged
        total.rejects += parsed.rejects
        count_unknown(total.unknown_fields, parsed.unknown_fields.items())
    return _file_parse(fingerprint_of(hasher), total, part)


class Parser:
    """Parses a run's files into part files of ``row_format`` under ``scratch``; a process
    pool is started the first time a kind has enough to parse to be worth it, and shut down
    on exit."""

    def __init__(self, scratch: Path, row_format: str) -> None:
        self.scratch = scratch
        self.row_format = row_format
        self.workers = os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._parts = 0

    def __enter__(self) -> Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_start_worker, initargs=(os.getpid(),)
            )
        return self._pool

    def parse(
        self,
        source: Source,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        loaded: dict[str, str],
        advance: Advance,
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        """Each file with what parsing gave, in order. ``loaded`` maps a URL to the
        fingerprint of the content already loaded from it."""
        offloaded = sum(max(f.size - HANDOFF_BYTES, 0) for f in files)
        parallel = self.workers > 1 and offloaded >= PARALLEL_PARSE_BYTES
        window = 2 * self.workers if parallel else 0
        reader = source if source.read_in_workers else None
        pending: deque[tuple[list[SourceFile], Future[list[FileParse]] | list[FileParse]]]
        pending = deque()
        for task_files, inputs in self._tasks(source, files, file_ids, loaded):
            self._parts += 1
            part = self.scratch / f"{kind}-{self._parts:06d}.{self.row_format}"
            args = (kind, self.row_format, reader, inputs, part)
            if parallel:
                pending.append((task_files, self.pool().submit(parse_task, *args)))
            else:
                pending.append((task_files, parse_task(*args)))
            while len(pending) > window:
                yield from _finish(*pending.popleft(), advance)
        while pending:
            yield from _finish(*pending.popleft(), advance)

    def _tasks(
        self,
        source: Source,
        files: list[SourceFile],
        file_ids: dict[str, int],
        loaded: dict[str, str],
    ) -> Iterator[tuple[list[SourceFile], list[FileInput]]]:
        task_files: list[SourceFile] = []
        inputs: list[FileInput] = []
        size = 0
        contents: Iterator[tuple[SourceFile, bytes | None]] = (
            ((file, None) for file in files)
            if source.read_in_workers
            else _read_in_batches(source, files)
        )
        for file, data in contents:
            task_files.append(file)
            inputs.append(FileInput(file, file_ids[file.url], loaded.get(file.url), data))
            size += file.size
            if size >= TASK_BYTES or len(inputs) >= TASK_FILES:
                yield task_files, inputs
                task_files, inputs, size = [], [], 0
        if inputs:
            yield task_files, inputs


def _finish(
    files: list[SourceFile],
    results: Future[list[FileParse]] | list[FileParse],
    advance: Advance,
) -> Iterator[tuple[SourceFile, FileParse]]:
    if isinstance(results, Future):
        results = results.result()
    records = sum(r.lines_read for r in results)
    advance(sum(f.size for f in files), files=len(files), records=records)
    yield from zip(files, results, strict=True)


def _read_in_batches(source: Source, files: list[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
    """``source.read_many`` over batches of about READ_BATCH_BYTES: a source may read its
    whole list ahead (a thread pool's ``map`` does), which for 10M events is gigabytes."""
    batch: list[SourceFile] = []
    size = 0
    for file in files:
        if batch and size + file.size > READ_BATCH_BYTES:
            yield from source.read_many(batch)
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield from source.read_many(batch)


# -- worker processes ----------------------------------------------------------------------

PARENT_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # prctl(2): a signal the kernel sends when the parent process ends


def _start_worker(parent: int) -> None:
    """A parse worker lives only as long as the run that started it.

    Ctrl-C reaches every process of the terminal's group: the worker ignores it and lets the
    run stop its pool (no traceback per worker). When the run is killed, the kernel kills the
    worker (Linux's parent-death signal); elsewhere, or if the run died before the signal
    was armed, a thread that watches the parent does it within ``PARENT_POLL_SECONDS``.
    """
    gc.enable()  # forked from a run that paused it (``pipeline.cyclic_gc_paused``)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    started_under = os.getppid()
    if not _alive(parent):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(started_under,), daemon=True).start()


def _watch_parent(started_under: int) -> None:
    while os.getppid() == started_under:  # an orphan gets a new parent
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


# -- scratch folders -----------------------------------------------------------------------

SCRATCH_PREFIX = "sparkify-"
OWNER_LOCK = "owner.lock"  # locked by the run that owns the folder (and its workers)


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A run's scratch folder for its part files: ``$TMPDIR/sparkify-<pid>-<random>``,
    removed at the end. The folders that killed runs left behind are removed first."""
    root = Path(tempfile.gettempdir())
    remove_dead_scratch(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root))
    owner = os.open(folder / OWNER_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(owner, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(owner)


def remove_dead_scratch(root: Path) -> None:
    """Remove the scratch folders under ``root`` whose run is gone: its process does not
    exist, and nothing (the run, or a worker of it) holds the folder's lock."""
    for folder in root.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            owner = os.open(folder / OWNER_LOCK, os.O_RDWR)
        except OSError:
            continue  # not a folder of this kind, or not ours to remove
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(owner)
            continue
        with suppress(OSError):
            shutil.rmtree(folder)
        os.close(owner)

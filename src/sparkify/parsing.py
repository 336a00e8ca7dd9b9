"""Reading, fingerprinting and parsing a run's files, in worker processes when there is much.

The main process reads each file's bytes and hands them out in tasks; a task fingerprints
its files, parses those whose content is not loaded yet and appends their canonical rows to
its own part file in the run's scratch folder. Only counts and rejects come back, so rows
never pass through the main process, and memory is bounded by the tasks in flight.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sparkify.records import PARSERS, Reject
from sparkify.sources import Source, SourceFile, fingerprint

PARALLEL_PARSE_BYTES = 16 * 1024 * 1024  # below this, worker start-up costs more than it saves
READ_BATCH_BYTES = 256 * 1024 * 1024  # read ahead at most this much (bounds memory)
TASK_BYTES = 8 * 1024 * 1024  # files are grouped into tasks of about this size...
TASK_FILES = 2000  # ...and at most this many files


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


@dataclass(frozen=True)
class FileInput:
    """One file of a task: its id, bytes, ETag if the store gave one, and the fingerprint
    of the content already loaded from its URL (None when new)."""

    file_id: int
    data: bytes
    etag: str | None
    loaded_fingerprint: str | None


def parse_task(kind: str, files: list[FileInput], part: Path) -> list[FileParse]:
    """Fingerprint and parse ``files``, appending the rows of each new content to ``part``."""
    parse = PARSERS[kind]
    results = []
    with part.open("ab") as out:
        for item in files:
            digest = item.etag or fingerprint(item.data)
            if digest == item.loaded_fingerprint:
                results.append(FileParse(digest, unchanged=True))
                continue
            parsed = parse(item.data, item.file_id)
            if parsed.rows:
                out.write(b"\n".join(parsed.rows) + b"\n")
            results.append(
                FileParse(
                    digest,
                    lines_read=parsed.lines_read,
                    rows_staged=len(parsed.rows),
                    rejects=parsed.rejects,
                    part=part if parsed.rows else None,
                )
            )
    return results


class Parser:
    """Parses a run's files into part files under ``scratch``; a process pool is started
    the first time a kind has enough bytes to be worth it, and shut down on exit."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
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
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return self._pool

    def parse(
        self,
        source: Source,
        kind: str,
        files: list[SourceFile],
        file_ids: dict[str, int],
        loaded: dict[str, str],
        advance: Callable[[int], None],
    ) -> Iterator[tuple[SourceFile, FileParse]]:
        """Each file with what parsing gave, in order. ``loaded`` maps a URL to the
        fingerprint of the content already loaded from it."""
        parallel = self.workers > 1 and sum(f.size for f in files) >= PARALLEL_PARSE_BYTES
        window = 2 * self.workers if parallel else 0
        pending: deque[tuple[list[SourceFile], Future[list[FileParse]] | list[FileParse]]]
        pending = deque()
        for task_files, inputs in self._tasks(source, files, file_ids, loaded):
            self._parts += 1
            part = self.scratch / f"{kind}-{self._parts:06d}.json"
            if parallel:
                pending.append((task_files, self.pool().submit(parse_task, kind, inputs, part)))
            else:
                pending.append((task_files, parse_task(kind, inputs, part)))
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
        for file, data in _read_in_batches(source, files):
            task_files.append(file)
            inputs.append(FileInput(file_ids[file.url], data, file.etag, loaded.get(file.url)))
            size += len(data)
            if size >= TASK_BYTES or len(inputs) >= TASK_FILES:
                yield task_files, inputs
                task_files, inputs, size = [], [], 0
        if inputs:
            yield task_files, inputs


def _finish(
    files: list[SourceFile],
    results: Future[list[FileParse]] | list[FileParse],
    advance: Callable[[int], None],
) -> Iterator[tuple[SourceFile, FileParse]]:
    if isinstance(results, Future):
        results = results.result()
    advance(sum(f.size for f in files))
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

"""Raw files in object stores: ``s3://`` (and S3-compatible stores), or any fsspec protocol.

Listing is one paginated listing per prefix (``find(detail=True)``) that gives each object's
size and ETag, so the file ledger skips unchanged objects without a HEAD or a GET. Reads run
concurrently within a bounded window and come back in the order asked for. Failures become
one-line errors naming the URL, through the AWS adapter's one mapping (``sparkify.aws``);
transient ones (throttling, 5xx, connection errors, timeouts) are retried with exponential
backoff a bounded number of times. Region, endpoint and credentials come from the same
adapter, and secrets never appear in messages.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import fsspec
from botocore.exceptions import BotoCoreError, ClientError
from fsspec.registry import known_implementations

from sparkify.aws import AwsOptions, aws_error, classify, network_errors
from sparkify.config import Settings, load_settings
from sparkify.errors import SourceError
from sparkify.sources.base import IgnoredFile, Source, SourceFile, ledger_problem
from sparkify.text import printable

T = TypeVar("T")

S3_PROTOCOLS = ("s3", "s3a")
# What listing and reading may raise: mapped by ``aws_error``, retried when transient.
_STORE_ERRORS = (OSError, BotoCoreError, ClientError, *network_errors())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient failures with exponential backoff and jitter."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 5.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class ReadLimits:
    """How many objects may be in flight, and how many bytes read but not yet consumed."""

    concurrency: int = 16
    window_bytes: int = 64 * 1024 * 1024


def filesystem_class(protocol: str) -> type[fsspec.AbstractFileSystem]:
    """The fsspec class for ``protocol``, or a SourceError naming the package to install."""
    try:
        return fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise SourceError(
            f"unsupported URL scheme '{protocol}://': use a local path, a file:// or s3:// "
            "URL, or another fsspec protocol such as gs:// or az://"
        ) from None
    except ImportError as exc:
        package = known_implementations.get(protocol, {}).get("class", "").split(".")[0]
        if package in ("", "fsspec"):
            missing = exc.__cause__ or exc
            package = (getattr(missing, "name", None) or "").split(".")[0] or protocol
        install = "'sparkify[s3]'" if protocol in S3_PROTOCOLS else package
        raise SourceError(
            f"reading {protocol}:// URLs needs the {package} package: pip install {install}"
        ) from None


class ObjectStoreSource(Source):
    """``.json`` objects under one URL prefix (or one object), read through fsspec."""

    def __init__(
        self,
        location: str,
        settings: Settings | None = None,
        *,
        retry: RetryPolicy | None = None,
        limits: ReadLimits | None = None,
    ) -> None:
        self.location = location
        self.protocol = urlparse(location).scheme.lower()
        self.retry = retry or RetryPolicy()
        self.limits = limits or ReadLimits()
        fs_class = filesystem_class(self.protocol)
        self.options = AwsOptions.from_settings(settings or load_settings())
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.protocol in S3_PROTOCOLS:
            options.update(self.options.s3fs_options(self.limits.concurrency))
        self.fs = fs_class(**options)
        if self.protocol in S3_PROTOCOLS:
            self.fs.retries = 1  # one layer of retries: ours
        self.root = self.fs._strip_protocol(location)

    def list_files(self) -> list[SourceFile]:
        entries = self._retrying(lambda: self.fs.find(self.root, detail=True), self.location)
        if not entries:
            raise SourceError(f"no objects under {self.location}: check the bucket and prefix")
        files, ignored = [], []
        for name, info in entries.items():
            if name.endswith(".json") and info.get("type", "file") == "file":
                url = self.fs.unstrip_protocol(name)
                problem = ledger_problem(url)
                if problem:
                    ignored.append(IgnoredFile(printable(url), problem))
                else:
                    files.append(_source_file(url, info))
        files.sort(key=lambda f: f.url)
        self.ignored = tuple(sorted(ignored, key=lambda i: i.url))
        return files

    def read(self, file: SourceFile) -> bytes:
        path = self.fs._strip_protocol(file.url)
        kwargs: dict[str, Any] = {}
        if self.protocol in S3_PROTOCOLS and file.size <= self.fs.default_block_size:
            kwargs["max_concurrency"] = 1  # one GET, without s3fs's HEAD for the size
        data = self._retrying(lambda: self.fs.cat_file(path, **kwargs), file.url, reading=True)
        return bytes(data)

    def read_many(self, files: Iterable[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
        """Contents in the order given, read ``limits.concurrency`` at a time.

        At most ``concurrency`` objects are in flight or read and waiting to be consumed, and
        together they hold at most ``window_bytes`` (or one object, when it is larger).
        """
        queue = deque(files)
        pending: deque[tuple[SourceFile, Future[bytes]]] = deque()
        window = 0
        pool = ThreadPoolExecutor(self.limits.concurrency, thread_name_prefix="sparkify-read")
        try:
            while queue or pending:
                while (
                    queue
                    and len(pending) < self.limits.concurrency
                    and (not pending or window + queue[0].size <= self.limits.window_bytes)
                ):
                    file = queue.popleft()
                    pending.append((file, pool.submit(self.read, file)))
                    window += file.size
                file, future = pending.popleft()
                data = future.result()
                window -= file.size
                yield file, data
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _retrying(self, call: Callable[[], T], url: str, reading: bool = False) -> T:
        attempt = 1
        while True:
            try:
                return call()
            except _STORE_ERRORS as exc:
                if attempt >= self.retry.attempts or not classify(exc).transient:
                    s3 = self.protocol in S3_PROTOCOLS
                    raise aws_error(
                        exc,
                        f"{self.protocol}:{'read' if reading else 'list'}",
                        url=url,
                        verb="read" if reading else "list",
                        anonymous=self.options.anonymous,
                        endpoint=self.options.s3_endpoint if s3 else None,
                        attempts=attempt,
                        options=self.options,
                    ) from None
            time.sleep(self.retry.delay(attempt))
            attempt += 1


def _source_file(url: str, info: Mapping[str, Any]) -> SourceFile:
    """A listed object; its ETag is both change token and content fingerprint."""
    size = int(info.get("size") or info.get("Size") or 0)
    etag = info.get("ETag") or info.get("etag")
    if etag:
        etag = str(etag).strip('"')
        return SourceFile(url, size, version=etag, etag=etag)
    for name in ("generation", "VersionId", "LastModified", "last_modified", "mtime", "created"):
        if info.get(name):
            return SourceFile(url, size, version=f"{name}:{info[name]}")
    # No change token: read it every run; the content fingerprint still avoids reloading.
    return SourceFile(url, size, version=f"unlisted:{time.time_ns()}")

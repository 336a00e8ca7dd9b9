"""Raw files in object stores: ``s3://`` (and S3-compatible stores), or any fsspec protocol.

Listing is one paginated listing per prefix (``find(detail=True)``) that gives each object's
size and ETag, so the file ledger skips unchanged objects without a HEAD or a GET. Reads run
concurrently within a bounded window and come back in the order asked for. Failures become
one-line ``SourceError`` messages naming the URL (exit code 2); transient ones (throttling,
5xx, connection errors, timeouts) are retried with exponential backoff a bounded number of
times. Credentials come from the standard boto chain and never appear in messages.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import IncompleteRead
from typing import Any, TypeVar
from urllib.parse import urlparse

import fsspec
from aiohttp import ClientError as AiohttpError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from fsspec.exceptions import FSTimeoutError
from fsspec.registry import known_implementations

from sparkify.config import Settings, load_settings
from sparkify.errors import ConfigError, SourceError
from sparkify.sources import Source, SourceFile

T = TypeVar("T")

S3_PROTOCOLS = ("s3", "s3a")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
_TRANSIENT_CODES = _THROTTLED | {"RequestTimeout", "InternalError", "ServiceUnavailable"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}
_5XX = {"429", "500", "502", "503", "504"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301"}
_NETWORK_ERRORS = (
    HTTPClientError,
    BotoConnectionError,
    AiohttpError,
    IncompleteRead,
    FSTimeoutError,
    asyncio.TimeoutError,
    TimeoutError,
    ConnectionError,
)
# What listing and reading may raise: mapped to a SourceError, retried when transient.
_STORE_ERRORS = (OSError, BotoCoreError, ClientError, *_NETWORK_ERRORS)


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


@dataclass(frozen=True)
class StoreOptions:
    """How to reach the store, resolved once from settings and the environment."""

    endpoint_url: str | None = None
    region: str | None = None
    anonymous: bool = False
    key: str | None = None
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str]) -> StoreOptions:
        endpoint = (
            settings.get("S3", "ENDPOINT_URL")
            or environ.get("AWS_ENDPOINT_URL_S3")
            or environ.get("AWS_ENDPOINT_URL")
            or None
        )
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise ConfigError(f"[S3] ENDPOINT_URL must be an http:// or https:// URL: {endpoint}")
        key, secret = settings.get("AWS", "KEY") or None, settings.get("AWS", "SECRET") or None
        if bool(key) != bool(secret):
            raise ConfigError("set both [AWS] KEY and [AWS] SECRET, or neither")
        return cls(endpoint, _region(settings), _anonymous(settings), key, secret)

    def s3fs_options(self, limits: ReadLimits) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem``; retries are left to ``RetryPolicy``."""
        options: dict[str, Any] = {
            "anon": self.anonymous,
            "endpoint_url": self.endpoint_url,
            "config_kwargs": {
                "retries": {"total_max_attempts": 1},
                "max_pool_connections": limits.concurrency,
            },
        }
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        if self.key and not self.anonymous:
            options.update(key=self.key, secret=self.secret)
        return options


def _region(settings: Settings) -> str | None:
    """[AWS] REGION when set explicitly; else the boto chain's; else the default."""
    if settings.source("AWS", "REGION") != "default":
        return settings.get("AWS", "REGION") or None
    import botocore.session

    return botocore.session.Session().get_config_variable("region") or settings.get("AWS", "REGION")


def _anonymous(settings: Settings) -> bool:
    value = (settings.get("S3", "ANONYMOUS") or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"[S3] ANONYMOUS must be true or false, got {value!r}")
    return value in _TRUE


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
        raise SourceError(
            f"reading {protocol}:// URLs needs the {package} package: pip install {package}"
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
        self.options = StoreOptions.from_settings(settings or load_settings(), os.environ)
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.protocol in S3_PROTOCOLS:
            options.update(self.options.s3fs_options(self.limits))
        self.fs = fs_class(**options)
        if self.protocol in S3_PROTOCOLS:
            self.fs.retries = 1  # one layer of retries: ours
        self.root = self.fs._strip_protocol(location)

    def list_files(self) -> list[SourceFile]:
        entries = self._retrying(lambda: self.fs.find(self.root, detail=True), self.location)
        if not entries:
            raise SourceError(f"no objects under {self.location}: check the bucket and prefix")
        files = [
            _source_file(self.fs.unstrip_protocol(name), info)
            for name, info in entries.items()
            if name.endswith(".json") and info.get("type", "file") == "file"
        ]
        files.sort(key=lambda f: f.url)
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
                if attempt >= self.retry.attempts or not _is_transient(exc):
                    message = self._message(exc, url, reading, attempt)
                    raise SourceError(self._scrub(message)) from None
            time.sleep(self.retry.delay(attempt))
            attempt += 1

    def _message(self, exc: BaseException, url: str, reading: bool, attempts: int) -> str:
        code = _error_code(exc)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        endpoint = self.options.endpoint_url if self.protocol in S3_PROTOCOLS else None
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return (
                f"no AWS credentials found for {url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, use an instance role, or set [S3] ANONYMOUS = true "
                "for a public bucket"
            )
        if isinstance(exc, CredentialRetrievalError):
            return f"cannot load AWS credentials for {url}: {type(exc).__name__}"
        if isinstance(exc, BotoConnectionError):
            where = endpoint or "the object store"
            return (
                f"cannot reach {where} for {url}{tries}: check [S3] ENDPOINT_URL "
                "(or AWS_ENDPOINT_URL) and the network"
            )
        if code == "NoSuchBucket":
            return f"no such bucket: {url} (check the bucket name and the endpoint)"
        if code in _BAD_CREDENTIALS:
            return f"credentials rejected for {url} ({code}): check AWS_PROFILE or the access key"
        if code in _DENIED or (code is None and isinstance(exc, PermissionError)):
            action = "read" if reading else "list"
            if self.options.anonymous:
                return (
                    f"access denied: cannot {action} {url} anonymously ([S3] ANONYMOUS = true); "
                    "the bucket is not public: unset it to use credentials"
                )
            return (
                f"access denied: cannot {action} {url} with the credentials in use; "
                "for a public bucket set [S3] ANONYMOUS = true"
            )
        if code in _WRONG_REGION:
            return f"{url} is in another region ({code}): set [AWS] REGION to the bucket's region"
        if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "404"):
            if reading:
                return f"object disappeared while loading: {url} (run the etl again)"
            return f"no such bucket: {url} (check the bucket name and the endpoint)"
        action = "read" if reading else "list"
        text = _error_text(exc)
        return f"cannot {action} {url}{tries}: {code or type(exc).__name__}" + (
            f": {text}" if text else ""
        )

    def _scrub(self, message: str) -> str:
        """Belt and braces: no secret value may leave in a message."""
        secrets = (
            self.options.secret,
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
            os.environ.get("AWS_SESSION_TOKEN"),
        )
        for secret in secrets:
            if secret and len(secret) >= 4:
                message = message.replace(secret, "***")
        return message


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


def _client_error(exc: BaseException) -> ClientError | None:
    """The botocore error behind ``exc``, also when s3fs translated it into an OSError."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, ClientError):
            return candidate
    return None


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code (or, without one, the HTTP status) behind an error."""
    error = _client_error(exc)
    if error is None:
        return None
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code or status or "") or None


def _error_text(exc: BaseException) -> str:
    """The server's message, or the exception's first line, without errno decoration."""
    error = _client_error(exc)
    if error is not None:
        text = str(error.response.get("Error", {}).get("Message") or "")
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc)
    return text.splitlines()[0] if text else ""


def _is_transient(exc: BaseException) -> bool:
    """Throttling, server errors, timeouts and connection failures; never auth or 4xx."""
    error = _client_error(exc)
    if error is not None:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = _error_code(exc)
        return code in _TRANSIENT_CODES or status == 429 or status >= 500 or code in _5XX
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return False
    return isinstance(exc, _NETWORK_ERRORS) or isinstance(exc.__cause__, _NETWORK_ERRORS)

"""An S3-compatible server for the test run: moto on 127.0.0.1, with a request log.

``moto_server`` (session) starts one ``ThreadedMotoServer`` on a free loopback port. Its WSGI
app is wrapped in a ``RequestLog`` that records every S3 request, so tests can assert from the
server's side what was listed and downloaded, and can make the next matching requests fail
(throttling, 5xx) or slow down. ``s3_bucket`` gives a test a fresh, empty bucket and points
boto3 and s3fs at the server through the environment (fake credentials, region,
``AWS_ENDPOINT_URL``), isolated from any real AWS configuration on the machine.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from urllib.request import Request as HttpRequest
from urllib.request import urlopen

import boto3
import pytest
from moto import backends as moto_backends
from moto.server import ThreadedMotoServer

KEY_ID = "AKIATESTSPARKIFY0001"
SECRET = "sparkify-test-secret-must-never-be-printed"
REGION = "us-east-1"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/s3/")
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "SPARKIFY_CONFIG",
    "SPARKIFY_S3_ENDPOINT_URL",
    "SPARKIFY_S3_ANONYMOUS",
    "SPARKIFY_AWS_REGION",
    "SPARKIFY_AWS_KEY",
    "SPARKIFY_AWS_SECRET",
)


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    bucket: str
    key: str  # "" for bucket-level requests (listing)
    query: str
    signed: bool
    region: str = ""  # the region of a SigV4 signature's credential scope

    @property
    def is_object_get(self) -> bool:
        return self.method == "GET" and bool(self.key)

    @property
    def is_listing(self) -> bool:
        return self.method == "GET" and not self.key and "list-type=2" in self.query


@dataclass
class _Fault:
    method: str
    key: str
    remaining: int
    status: str
    code: str
    truncate: bool


class RequestLog:
    """WSGI middleware: records S3 requests; injects faults and latency on request."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self.latency = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = unquote(environ.get("PATH_INFO", ""))
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        bucket, _, key = path.lstrip("/").partition("/")
        query = environ.get("QUERY_STRING", "")
        signed = "HTTP_AUTHORIZATION" in environ or "X-Amz-Signature" in query
        scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = scope["region"] if scope else ""
        request = LoggedRequest(environ["REQUEST_METHOD"], bucket, key, query, signed, region)
        with self._lock:
            self.requests.append(request)
            fault = self._take_fault(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault and fault.truncate:  # the connection drops part-way through the body
                start_response("200 OK", [("Content-Length", "1000")])
                return [b"partial"]
            if fault:
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?><Error>'
                    f"<Code>{fault.code}</Code><Message>injected by the test</Message></Error>"
                ).encode()
                start_response(fault.status, [("Content-Type", "application/xml")])
                return [body]
            if self.latency:
                time.sleep(self.latency)
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _take_fault(self, request: LoggedRequest) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining and fault.method == request.method and fault.key == request.key:
                fault.remaining -= 1
                return fault
        return None

    def fail(
        self,
        key: str,
        times: int,
        method: str = "GET",
        status: str = "503 Slow Down",
        code: str = "SlowDown",
        truncate: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests for ``key`` with an S3 error, or with
        a body cut short (``truncate``)."""
        with self._lock:
            self._faults.append(_Fault(method, key, times, status, code, truncate))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.latency = 0.0
            self.max_in_flight = 0

    def object_gets(self, bucket: str) -> list[str]:
        """Keys downloaded from ``bucket``, in request order (repeats kept)."""
        return [r.key for r in self.requests if r.bucket == bucket and r.is_object_get]

    def of(self, bucket: str, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if r.bucket == bucket and (method is None or r.method == method)
        ]


@dataclass
class MotoServer:
    endpoint: str
    log: RequestLog

    def set_iam_auth(self, enabled: bool) -> None:
        """Make moto check signatures and IAM policies (off by default)."""
        value = b"0" if enabled else b"inf"
        request = HttpRequest(
            f"{self.endpoint}/moto-api/reset-auth",
            data=value,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str = "s3") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )


@dataclass
class S3Bucket:
    """A fresh bucket on the test server, and helpers to fill it."""

    name: str
    server: MotoServer
    client: Any = field(repr=False)

    def url(self, prefix: str = "") -> str:
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"

    def put(self, key: str, data: bytes) -> str:
        """Write one object; returns its ETag without quotes."""
        response = self.client.put_object(Bucket=self.name, Key=key, Body=data)
        return str(response["ETag"]).strip('"')

    def upload(self, local: Path, prefix: str) -> int:
        """Copy every file under ``local`` to ``prefix/`` (its relative paths kept)."""
        files = [p for p in sorted(local.rglob("*")) if p.is_file()]
        keys = [f"{prefix}/{p.relative_to(local).as_posix()}" for p in files]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key, path: self.put(key, path.read_bytes()), keys, files))
        return len(files)

    def make_public(self) -> None:
        """Let anyone read the objects, as public datasets do (``s3:GetObject`` for ``*``)."""
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{self.name}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.client.put_bucket_policy(Bucket=self.name, Policy=json.dumps(policy))

    def etag(self, key: str) -> str:
        return str(self.client.head_object(Bucket=self.name, Key=key)["ETag"]).strip('"')


def make_bucket(server: MotoServer) -> S3Bucket:
    client = server.client()
    name = f"sparkify-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(name, server, client)


def upload_dataset(bucket: S3Bucket, local: Path, parts: Iterable[str]) -> None:
    for part in parts:
        bucket.upload(local / part, part)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto S3 server on 127.0.0.1 for the whole run."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    wsgi_server = server._server  # moto exposes no hook for middleware; wrap its app
    assert wsgi_server is not None
    log = RequestLog(wsgi_server.app)
    wsgi_server.app = log
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        # moto lists its own package directory twice per request to route it; the list is
        # constant, and caching it saves about a sixth of the suite's S3 time.
        modules = tuple(moto_backends.list_of_moto_modules())
        patch.setattr(moto_backends, "list_of_moto_modules", lambda: modules)
        try:
            yield MotoServer(f"http://{host}:{port}", log)
        finally:
            server.stop()


@pytest.fixture
def s3_env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> MotoServer:
    """Point boto3/s3fs at the test server through the environment only."""
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    moto_server.log.reset()
    return moto_server


@pytest.fixture
def s3_bucket(s3_env: MotoServer) -> S3Bucket:
    """A fresh, empty bucket; the environment points at the server."""
    return make_bucket(s3_env)

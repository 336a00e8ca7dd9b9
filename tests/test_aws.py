"""The one AWS adapter (``sparkify.aws``) against the moto S3 server on 127.0.0.1.

S3 reads (``sources.objectstore``, through s3fs) and Redshift staging uploads (boto3, through
``Aws.call``) must resolve the same region from the same settings and report the same failure
with the same exit code. The region is read from the server's side: the credential scope of
each request's signature.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError
from moto_server import MotoServer, S3Bucket

from sparkify.aws import classify
from sparkify.backends.redshift import RedshiftBackend
from sparkify.config import Settings, load_settings
from sparkify.errors import EXIT_USAGE, SparkifyError
from sparkify.sources.objectstore import ObjectStoreSource, RetryPolicy

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"


def write_config(tmp_path: Path, bucket: str, *lines: str) -> Settings:
    config = tmp_path / "dwh.cfg"
    config.write_text(
        "\n".join(
            [
                "[WAREHOUSE]\nBACKEND = redshift",
                f"[IAM_ROLE]\nARN = {ROLE}",
                f"[S3]\nSTAGING_PREFIX = s3://{bucket}/loads",
                *lines,
            ]
        )
        + "\n"
    )
    return load_settings(config)


def read_one(settings: Settings, url: str) -> None:
    """List ``url`` and read its first object, as a run does."""
    source = ObjectStoreSource(url, settings, retry=RetryPolicy(attempts=1))
    source.read(source.list_files()[0])


def upload_one(settings: Settings, tmp_path: Path) -> str:
    """Stage one row for a Redshift COPY; the region its COPY names."""
    canonical = tmp_path / "events.json"
    canonical.write_bytes(orjson.dumps({"file_id": 1, "line_no": 1, "ts": 1541105830796}) + b"\n")
    backend = RedshiftBackend(settings)
    backend.stage("staging_events", [canonical])
    return backend.copy_options()[1]


@pytest.mark.parametrize(
    ("config_region", "chain_region", "expected"),
    [
        ("eu-west-1", "ap-south-1", "eu-west-1"),  # [AWS] REGION wins over the chain
        (None, "ap-south-1", "ap-south-1"),  # else the AWS chain's region
        (None, None, "us-west-2"),  # else the documented default
    ],
)
def test_s3_reads_and_staging_uploads_resolve_the_same_region(
    s3_bucket: S3Bucket,
    s3_env: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config_region: str | None,
    chain_region: str | None,
    expected: str,
) -> None:
    s3_bucket.put("in/2018-11-01-events.json", b'{"ts": 1}\n')
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    if chain_region:
        monkeypatch.setenv("AWS_DEFAULT_REGION", chain_region)
    lines = [f"[AWS]\nREGION = {config_region}"] if config_region else []
    settings = write_config(tmp_path, s3_bucket.name, *lines)
    s3_env.log.reset()

    read_one(settings, s3_bucket.url("in"))
    reads = {r.region for r in s3_env.log.of(s3_bucket.name)}
    s3_env.log.reset()
    copy_region = upload_one(settings, tmp_path)
    uploads = {r.region for r in s3_env.log.of(s3_bucket.name, "PUT")}

    assert reads == uploads == {expected}
    assert copy_region == f"'{expected}'"  # COPY reads the staged objects from that region


def closed_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def no_credentials(s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return {}


def access_denied(s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials of a user without any policy, with moto checking IAM."""
    iam = s3.server.client("iam")
    iam.create_user(UserName=f"{s3.name}-nobody")
    key = iam.create_access_key(UserName=f"{s3.name}-nobody")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    return {"iam": "on"}


def missing_bucket(s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return {"bucket": f"{s3.name}-missing"}


def unreachable(s3: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    endpoint = closed_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return {"endpoint": endpoint}


# Failure -> (exit code, what a read says, what an upload says); {url} is the source URL,
# {endpoint} the closed endpoint.
CASES: dict[str, tuple[Callable[..., dict[str, str]], int, str, str]] = {
    "no credentials": (
        no_credentials,
        EXIT_USAGE,
        "no AWS credentials found for {url}: set AWS_PROFILE",
        "no AWS credentials found: run `aws configure`",
    ),
    "access denied": (
        access_denied,
        EXIT_USAGE,
        "access denied: cannot list {url} with the credentials in use",
        "insufficient permissions: s3:PutObject was denied",
    ),
    "missing bucket": (
        missing_bucket,
        EXIT_USAGE,
        "no such bucket: {url} (check the bucket name and the endpoint)",
        "no such bucket on s3:PutObject (The specified bucket does not exist)",
    ),
    "unreachable endpoint": (
        unreachable,
        EXIT_USAGE,
        "cannot reach {endpoint} for {url}: check [S3] ENDPOINT_URL",
        "cannot reach {endpoint} for s3:PutObject: check the endpoint and the network",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_reads_and_uploads_map_aws_failures_alike(
    case: str,
    s3_bucket: S3Bucket,
    s3_env: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_bucket.put("in/2018-11-01-events.json", b'{"ts": 1}\n')
    arrange, exit_code, on_read, on_upload = CASES[case]
    found: dict[str, Any] = arrange(s3_bucket, monkeypatch)
    bucket = found.get("bucket", s3_bucket.name)
    settings = write_config(tmp_path, bucket)
    url = f"s3://{bucket}/in"
    errors = []
    if found.get("iam"):
        s3_env.set_iam_auth(True)
    try:
        for attempt in (lambda: read_one(settings, url), lambda: upload_one(settings, tmp_path)):
            with pytest.raises(SparkifyError) as caught:
                attempt()
            errors.append(caught.value)
    finally:
        s3_env.set_iam_auth(False)

    values = {"url": url, "endpoint": found.get("endpoint", "")}
    read, upload = errors
    assert str(read).startswith(on_read.format(**values)), read
    assert str(upload).startswith(on_upload.format(**values)), upload
    assert read.exit_code == upload.exit_code == exit_code
    assert all("\n" not in str(e) and "secret" not in str(e) for e in errors)


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("SlowDown", 503, True),
        ("SomethingNew", 429, True),  # throttled, whatever the code says
        ("SomethingNew", 502, True),
        ("AccessDenied", 403, False),
        ("NoSuchBucket", 404, False),
    ],
)
def test_only_throttling_and_server_errors_are_retried(
    code: str, status: int, transient: bool
) -> None:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    assert classify(ClientError(response, "GetObject")).transient is transient  # type: ignore[arg-type]

"""Loading raw files from an S3-compatible store (moto on 127.0.0.1, see ``moto_server.py``).

What is downloaded is asserted from the server's request log, never from timings.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import Warehouse, dump, etl, run_cli
from moto_server import KEY_ID, SECRET, MotoServer, S3Bucket, make_bucket, upload_dataset

from sparkify.config import load_settings
from sparkify.errors import SourceError
from sparkify.sources import open_source
from sparkify.sources.objectstore import ObjectStoreSource, ReadLimits, RetryPolicy

PARTS = ("song_data", "log_data")
TINY_OBJECTS = 40


@pytest.fixture(autouse=True)
def _point_aws_at_the_test_server(s3_env: MotoServer) -> None:
    """Every test here sees only the test server and its fake credentials."""


@pytest.fixture(scope="session")
def generated_bucket(moto_server: MotoServer, generated: Path) -> S3Bucket:
    """The generated dataset in a bucket that no test changes."""
    bucket = make_bucket(moto_server)
    upload_dataset(bucket, generated, PARTS)
    return bucket


@pytest.fixture(scope="session")
def small(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few files of the generated dataset: fast runs for everything but the equality test."""
    out = tmp_path_factory.mktemp("small")
    for part, count in (("song_data", 8), ("log_data", 2)):
        for path in sorted((generated / part).rglob("*.json"))[:count]:
            target = out / path.relative_to(generated)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return out


@pytest.fixture(scope="session")
def small_bucket(moto_server: MotoServer, small: Path) -> S3Bucket:
    """The small dataset in a bucket that no test changes."""
    bucket = make_bucket(moto_server)
    upload_dataset(bucket, small, PARTS)
    return bucket


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    """For behaviour that does not depend on the warehouse: DuckDB only, to keep it fast."""
    path = str(tmp_path / "warehouse.duckdb")
    return Warehouse(
        "duckdb",
        ["--backend", "duckdb", "--database", path],
        {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path},
    )


@pytest.fixture(scope="session")
def sample_bucket(moto_server: MotoServer, sample_data: Path) -> S3Bucket:
    """The public sample in a bucket that no test changes."""
    bucket = make_bucket(moto_server)
    upload_dataset(bucket, sample_data, PARTS)
    return bucket


def s3_etl(warehouse: Warehouse, bucket: S3Bucket) -> dict:
    """``sparkify etl`` of the bucket's song_data/ and log_data/; the JSON summary."""
    songs, logs = bucket.url("song_data"), bucket.url("log_data")
    result = warehouse.cli("etl", "--songs", songs, "--logs", logs, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def etl_error(tmp_path: Path, songs: str, logs: str | None = None) -> tuple[int, str]:
    """Run etl into a throwaway DuckDB file; the exit code and everything printed. Without
    ``logs``, the event logs are an empty local folder."""
    if logs is None:
        (tmp_path / "no-logs").mkdir(exist_ok=True)
    logs = logs or str(tmp_path / "no-logs")
    result = run_cli(
        "etl", "--database", str(tmp_path / "w.duckdb"), "--songs", songs, "--logs", logs
    )
    return result.exit_code, result.stderr + result.stdout


def json_files(root: Path) -> list[str]:
    """The keys a dataset gets in its bucket, sorted."""
    return sorted(
        p.relative_to(root).as_posix() for part in PARTS for p in (root / part).rglob("*.json")
    )


@pytest.mark.parametrize("dataset", ["generated", "sample_data"])
def test_etl_from_s3_gives_the_same_tables_as_the_local_copy(
    dataset: str,
    new_warehouse: Callable[[], Warehouse],
    s3_env: MotoServer,
    request: pytest.FixtureRequest,
) -> None:
    local: Path = request.getfixturevalue(dataset)
    bucket: S3Bucket = request.getfixturevalue(
        "generated_bucket" if dataset == "generated" else "sample_bucket"
    )
    from_local, from_s3 = new_warehouse(), new_warehouse()
    etl(from_local, local)
    s3_env.log.reset()

    summary = s3_etl(from_s3, bucket)

    assert dump(from_s3) == dump(from_local)
    keys = json_files(local)
    assert summary["files"] == {"new": len(keys), "changed": 0, "skipped": 0}
    assert sorted(s3_env.log.object_gets(bucket.name)) == keys  # each object once
    others = [r for r in s3_env.log.of(bucket.name) if not r.is_object_get]
    assert len(others) == 2 and all(r.is_listing for r in others)  # a listing per prefix, no HEAD


def test_the_ledger_keeps_url_size_and_etag_and_no_credentials(
    duckdb_warehouse: Warehouse, small_bucket: S3Bucket, small: Path
) -> None:
    summary = s3_etl(duckdb_warehouse, small_bucket)

    ledger = duckdb_warehouse.query("SELECT url, size, version, fingerprint FROM etl_files")
    expected = []
    for key in json_files(small):
        etag = small_bucket.etag(key)
        expected.append((small_bucket.url(key), (small / key).stat().st_size, etag, etag))
    assert sorted(ledger) == expected
    everything = json.dumps(summary) + repr(duckdb_warehouse.query("SELECT * FROM etl_files"))
    assert SECRET not in everything and KEY_ID not in everything


def test_rerun_downloads_no_unchanged_object(
    duckdb_warehouse: Warehouse, small_bucket: S3Bucket, small: Path, s3_env: MotoServer
) -> None:
    s3_etl(duckdb_warehouse, small_bucket)
    s3_env.log.reset()

    summary = s3_etl(duckdb_warehouse, small_bucket)

    assert summary["files"] == {"new": 0, "changed": 0, "skipped": len(json_files(small))}
    requests = s3_env.log.of(small_bucket.name)
    assert len(requests) == 2 and all(r.is_listing for r in requests)  # no GET, no HEAD


def test_replacing_one_object_reloads_just_that_object(
    duckdb_warehouse: Warehouse, s3_bucket: S3Bucket, small: Path, s3_env: MotoServer
) -> None:
    upload_dataset(s3_bucket, small, PARTS)
    s3_etl(duckdb_warehouse, s3_bucket)
    key = json_files(small)[-1]  # a song file: log_data sorts first
    record = orjson.loads((small / key).read_bytes())
    record["title"] = "Retitled"
    new_etag = s3_bucket.put(key, orjson.dumps(record))
    s3_env.log.reset()

    summary = s3_etl(duckdb_warehouse, s3_bucket)

    assert summary["files"] == {"new": 0, "changed": 1, "skipped": len(json_files(small)) - 1}
    assert s3_env.log.object_gets(s3_bucket.name) == [key]
    url, song_id = s3_bucket.url(key), record["song_id"]
    ledger = duckdb_warehouse.query(f"SELECT version FROM etl_files WHERE url = '{url}'")
    assert ledger == [(new_etag,)]
    titles = duckdb_warehouse.query(f"SELECT title FROM songs WHERE song_id = '{song_id}'")
    assert titles == [("Retitled",)]


def test_paths_file_urls_and_s3_urls_can_be_mixed(
    duckdb_warehouse: Warehouse, small_bucket: S3Bucket, small: Path, s3_env: MotoServer
) -> None:
    one_day = json_files(small)[0]
    result = duckdb_warehouse.cli(
        "etl",
        "--songs",
        (small / "song_data").as_uri(),
        "--logs",
        small_bucket.url(one_day),
        "--json",
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["files"]["new"] == len(json_files(small)) - 1
    assert s3_env.log.object_gets(small_bucket.name) == [one_day]


def test_public_buckets_are_read_without_credentials(
    duckdb_warehouse: Warehouse,
    s3_bucket: S3Bucket,
    small: Path,
    s3_env: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upload_dataset(s3_bucket, small, PARTS)
    s3_bucket.make_public()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("SPARKIFY_S3_ANONYMOUS", "true")
    s3_env.log.reset()

    s3_etl(duckdb_warehouse, s3_bucket)

    requests = s3_env.log.of(s3_bucket.name)
    assert requests and not any(r.signed for r in requests)


def test_anonymous_access_to_a_private_bucket(
    tmp_path: Path, small_bucket: S3Bucket, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARKIFY_S3_ANONYMOUS", "true")
    first_song = next(key for key in json_files(small) if key.startswith("song_data/"))
    url = small_bucket.url(first_song)
    assert etl_error(tmp_path, small_bucket.url("song_data")) == (
        2,
        f"error: access denied: cannot read {url} anonymously ([S3] ANONYMOUS = true); "
        "the bucket is not public: unset it to use credentials\n",
    )


def test_endpoint_and_region_from_sparkify_settings(
    small_bucket: S3Bucket, s3_env: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    config = tmp_path / "dwh.cfg"
    config.write_text(f"[S3]\nENDPOINT_URL = {s3_env.endpoint}\n[AWS]\nREGION = eu-west-1\n")

    source = ObjectStoreSource(small_bucket.url("log_data"), load_settings(config))

    assert source.options.region == "eu-west-1"
    assert len(source.list_files()) == 2
    monkeypatch.setenv("SPARKIFY_S3_ENDPOINT_URL", s3_env.endpoint)
    assert len(open_source(small_bucket.url("log_data")).list_files()) == 2


def test_transient_errors_are_retried(small_bucket: S3Bucket, s3_env: MotoServer) -> None:
    source = ObjectStoreSource(small_bucket.url("log_data"), retry=RetryPolicy(base_delay=0.01))
    s3_env.log.fail("", times=1, status="500 Internal Server Error", code="InternalError")
    files = source.list_files()
    throttled, cut_short = (file.url.split("/", 3)[3] for file in files)
    s3_env.log.fail(throttled, times=2)
    s3_env.log.fail(cut_short, times=1, truncate=True)

    read = list(source.read_many(files))

    assert [len(data) for _, data in read] == [file.size for file in files]
    assert len([r for r in s3_env.log.of(small_bucket.name) if r.is_listing]) == 2
    assert sorted(s3_env.log.object_gets(small_bucket.name)) == [throttled] * 3 + [cut_short] * 2


def test_retries_are_bounded(
    tmp_path: Path, small_bucket: S3Bucket, small: Path, s3_env: MotoServer
) -> None:
    key = json_files(small)[0]
    s3_env.log.fail(key, times=100)

    code, output = etl_error(tmp_path, small_bucket.url("log_data"))

    url = small_bucket.url(key)
    assert (code, output) == (  # still throttled after the retries: a runtime failure
        1,
        f"error: cannot read {url} after 4 attempts: SlowDown: injected by the test\n",
    )
    assert s3_env.log.object_gets(small_bucket.name).count(key) == 4


def test_missing_bucket(tmp_path: Path, s3_env: MotoServer) -> None:
    url = "s3://no-such-bucket-sparkify/song_data"
    assert etl_error(tmp_path, url) == (
        2,
        f"error: no such bucket: {url} (check the bucket name and the endpoint)\n",
    )


def test_empty_prefix(tmp_path: Path, small_bucket: S3Bucket, s3_env: MotoServer) -> None:
    url = small_bucket.url("nothing_here")
    assert etl_error(tmp_path, url) == (
        2,
        f"error: no objects under {url}: check the bucket and prefix\n",
    )


def test_access_denied(
    tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_bucket.put("song_data/A/TRONE.json", b"{}")
    iam = s3_bucket.server.client("iam")
    iam.create_user(UserName=f"{s3_bucket.name}-nobody")
    key = iam.create_access_key(UserName=f"{s3_bucket.name}-nobody")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    url = s3_bucket.url("song_data")

    s3_bucket.server.set_iam_auth(True)
    try:
        denied = etl_error(tmp_path, url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
        rejected = etl_error(tmp_path, url)
    finally:
        s3_bucket.server.set_iam_auth(False)

    assert denied == (
        2,
        f"error: access denied: cannot list {url} with the credentials in use; "
        "for a public bucket set [S3] ANONYMOUS = true\n",
    )
    assert rejected == (
        2,
        f"error: credentials rejected for {url} (InvalidAccessKeyId): "
        "check AWS_PROFILE or the access key\n",
    )
    assert key["SecretAccessKey"] not in denied[1] + rejected[1]


def test_no_credentials(
    tmp_path: Path, small_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = small_bucket.url("song_data")
    assert etl_error(tmp_path, url) == (
        2,
        f"error: no AWS credentials found for {url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, use an instance role, or set [S3] ANONYMOUS = true for a "
        "public bucket\n",
    )


def test_unreachable_endpoint(
    tmp_path: Path, s3_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("SPARKIFY_S3_ENDPOINT_URL", closed)
    url = "s3://bucket/song_data"
    assert etl_error(tmp_path, url) == (
        2,
        f"error: cannot reach {closed} for {url} after 4 attempts: check [S3] ENDPOINT_URL "
        "(or AWS_ENDPOINT_URL) and the network\n",
    )


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_protocol_without_its_package(tmp_path: Path) -> None:
    assert etl_error(tmp_path, "gs://bucket/song_data") == (
        2,
        "error: reading gs:// URLs needs the gcsfs package: pip install gcsfs\n",
    )


def test_unknown_protocol(tmp_path: Path) -> None:
    assert etl_error(tmp_path, "nosuch://bucket/song_data") == (
        2,
        "error: unsupported URL scheme 'nosuch://': use a local path, a file:// or s3:// URL, "
        "or another fsspec protocol such as gs:// or az://\n",
    )


def test_bad_anonymous_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKIFY_S3_ANONYMOUS", "maybe")
    assert etl_error(tmp_path, "s3://bucket/song_data") == (
        2,
        "error: [S3] ANONYMOUS must be true or false, got 'maybe'\n",
    )


@pytest.fixture(scope="session")
def tiny_bucket(moto_server: MotoServer) -> tuple[S3Bucket, list[bytes]]:
    """One-song objects of about 40 bytes, like the public catalogue, and their contents."""
    bucket = make_bucket(moto_server)
    bodies = [
        orjson.dumps({"song_id": f"SO{i:05d}", "title": f"T{i}"}) for i in range(TINY_OBJECTS)
    ]
    for i, body in enumerate(bodies):
        bucket.put(f"song_data/{i:05d}.json", body)
    return bucket, bodies


def test_many_tiny_objects_are_read_concurrently_in_order(
    tiny_bucket: tuple[S3Bucket, list[bytes]], s3_env: MotoServer
) -> None:
    bucket, bodies = tiny_bucket
    source = ObjectStoreSource(bucket.url("song_data"), limits=ReadLimits(concurrency=8))
    files = source.list_files()[::-1]  # any order asked for is the order given back
    s3_env.log.reset()
    s3_env.log.latency = 0.02

    read = [(file.url, data) for file, data in source.read_many(files)]

    assert read == [(f.url, bodies[int(f.url[-10:-5])]) for f in files]
    assert 4 <= s3_env.log.max_in_flight <= 8


@pytest.mark.parametrize(("concurrency", "window_bytes"), [(4, 10**9), (16, 100)])
def test_reading_ahead_is_bounded(
    tiny_bucket: tuple[S3Bucket, list[bytes]],
    s3_env: MotoServer,
    concurrency: int,
    window_bytes: int,
) -> None:
    bucket, _ = tiny_bucket
    limits = ReadLimits(concurrency=concurrency, window_bytes=window_bytes)
    source = ObjectStoreSource(bucket.url("song_data"), limits=limits)
    files = source.list_files()[:24]
    ahead = min(concurrency, window_bytes // max(f.size for f in files))
    s3_env.log.reset()

    for consumed, _ in enumerate(source.read_many(files), start=1):
        assert len(s3_env.log.object_gets(bucket.name)) <= consumed + ahead


def test_other_fsspec_protocols_list_and_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe({"/sparkify-test/log_data/b.json": b"2", "/sparkify-test/log_data/a.json": b"1"})
    memory.pipe("/sparkify-test/log_data/notes.txt", b"skipped")
    try:
        source = ObjectStoreSource("memory://sparkify-test/log_data", load_settings(environ={}))
        files = source.list_files()
        assert [(f.url.rsplit("/", 1)[-1], f.size) for f in files] == [("a.json", 1), ("b.json", 1)]
        assert all(f.version.startswith("created:") and f.etag is None for f in files)
        assert [data for _, data in source.read_many(files)] == [b"1", b"2"]
    finally:
        memory.rm("/sparkify-test", recursive=True)


def test_retry_policy_backs_off_exponentially_within_a_ceiling() -> None:
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)]:
        assert ceiling / 2 <= policy.delay(retry) <= ceiling


def test_errors_are_source_errors(s3_env: MotoServer) -> None:
    source = ObjectStoreSource("s3://no-such-bucket-sparkify/x", retry=RetryPolicy(attempts=1))
    with pytest.raises(SourceError) as caught:
        source.list_files()
    assert caught.value.exit_code == 2


def test_objects_moved_to_another_prefix_are_recognised_by_etag(
    duckdb_warehouse: Warehouse, s3_bucket: S3Bucket, small: Path, s3_env: MotoServer
) -> None:
    upload_dataset(s3_bucket, small, PARTS)
    s3_etl(duckdb_warehouse, s3_bucket)
    for key in json_files(small):
        s3_bucket.client.copy_object(
            Bucket=s3_bucket.name, Key=f"moved/{key}", CopySource=f"{s3_bucket.name}/{key}"
        )
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=key)
    s3_env.log.reset()

    songs, logs = s3_bucket.url("moved/song_data"), s3_bucket.url("moved/log_data")
    result = duckdb_warehouse.cli("etl", "--songs", songs, "--logs", logs, "--json")

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["moved"]) == len(json_files(small)) and summary["missing"] == []
    assert summary["files"]["new"] == 0
    assert s3_env.log.object_gets(s3_bucket.name) == []  # the ETags were enough

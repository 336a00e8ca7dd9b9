"""Hostile entries in a source folder: what cannot be a raw file, or cannot be named in the
ledger, is ignored with a warning that names it, and counted; the rest loads.

One rule on every backend (the ``warehouse`` fixture): a ``.json`` entry is ignored when it is
not a regular file (a FIFO, a socket, a device), when its name is not valid UTF-8, or when its
URL is longer than the ledger's 1,024 bytes.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from conftest import Warehouse
from datasets import NOV_1, play, song, write_day, write_song

from sparkify.errors import SourceError
from sparkify.sources import MAX_URL_BYTES, LocalSource, SourceFile, local


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_song(root, song("SO1", "Song One", "The Band", 200.0))
    write_day(
        root, [play(NOV_1 + 1000, 1, 10, 0, song="Song One", artist="The Band", length=200.0)]
    )
    return root


def run(warehouse: Warehouse, data: Path) -> tuple[dict, str]:
    result = warehouse.cli(
        "etl", "--songs", str(data / "song_data"), "--logs", str(data / "log_data"), "--json"
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def warnings(stderr: str) -> list[str]:
    """The warnings logged on stderr (as JSON lines, under --json)."""
    records = [json.loads(line) for line in stderr.splitlines()]
    return [r["message"] for r in records if r["level"] == "warning"]


def assert_ignored(summary: dict, stderr: str, shown: str, reason: str) -> None:
    assert summary["ignored"] == [{"url": shown, "reason": reason}]
    assert f"ignored {shown}: {reason}" in warnings(stderr)
    assert summary["files"]["new"] == 2  # the song and the day file still load
    assert summary["tables"]["songplays"] == 1


@pytest.mark.timeout(60)  # today the run waits forever for a writer, holding the run lock
def test_a_fifo_named_json_is_ignored(warehouse: Warehouse, data: Path) -> None:
    fifo = data / "log_data" / "2018-11-02-events.json"
    os.mkfifo(fifo)

    summary, stderr = run(warehouse, data)

    assert_ignored(summary, stderr, str(fifo), "not a regular file (FIFO)")
    assert warehouse.query("SELECT COUNT(*) FROM etl_files") == [(2,)]


@pytest.mark.timeout(60)
def test_a_socket_named_json_is_ignored(warehouse: Warehouse, data: Path) -> None:
    path = data / "song_data" / "S.json"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        summary, stderr = run(warehouse, data)

    assert_ignored(summary, stderr, str(path), "not a regular file (socket)")


@pytest.mark.timeout(60)
def test_a_fifo_given_as_the_input_is_a_usage_error(warehouse: Warehouse, data: Path) -> None:
    fifo = data / "events.json"
    os.mkfifo(fifo)
    result = warehouse.cli("etl", "--songs", str(data / "song_data"), "--logs", str(fifo))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: not a regular file or folder (FIFO): {fifo}\n",
    )


@pytest.mark.timeout(30)
def test_reading_a_file_that_became_a_fifo_fails_at_once(tmp_path: Path) -> None:
    """Listed as a file, replaced by a FIFO before it is read: no read may wait on it."""
    fifo = tmp_path / "a.json"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match=r"^cannot read .*a\.json: not a regular file \(FIFO\)$"):
        LocalSource(str(tmp_path)).read(SourceFile(str(fifo), 0, "0"))


@pytest.mark.parametrize("size", [0, 1, 250, 3 * 1024 * 1024])
@pytest.mark.parametrize("change", ["same", "grew", "shrank", "grew once opened", "short reads"])
def test_a_file_is_read_whole_whatever_its_size_did_after_the_listing(
    tmp_path: Path, size: int, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read`` reads to the end of the file whatever its size did since the listing: a file
    that grew once opened (its size seen smaller than its content) is read on to its end, and
    a read that returns less than asked (one over 2 GiB, some file systems) is not the end."""
    if change == "grew once opened":
        opened = local._open_regular
        monkeypatch.setattr(local, "_open_regular", lambda f: (opened(f)[0], size // 3))
    if change == "short reads":
        read = os.read
        monkeypatch.setattr(local.os, "read", lambda fd, n: read(fd, min(n, 100)))
    path = tmp_path / "a.json"
    content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path.write_bytes(content)
    source = LocalSource(str(tmp_path))
    [listed] = source.list_files()
    if change == "grew":
        content += b"y" * (2 * 1024 * 1024 + 7)
    elif change == "shrank":
        content = content[: size // 2]
    path.write_bytes(content)
    assert source.read(listed) == content
    assert b"".join(source.read_chunks(listed, 1000)) == content


def test_a_file_name_that_is_not_utf8_is_ignored(warehouse: Warehouse, data: Path) -> None:
    folder = data / "song_data" / "A"
    with open(os.fsencode(folder) + b"/caf\xe9.json", "wb") as out:
        out.write(json.dumps(song("SO9", "Caf", "Someone", 1.0)).encode())
    odd_folder = os.fsencode(data / "log_data") + b"/\xff"
    os.mkdir(odd_folder)
    with open(odd_folder + b"/2018-11-03-events.json", "wb") as out:
        out.write(b"{}")

    summary, stderr = run(warehouse, data)

    reason = "the path is not valid UTF-8 (rename it to load it)"
    shown = [f"{folder}/caf\\xe9.json", f"{data}/log_data/\\xff/2018-11-03-events.json"]
    assert summary["ignored"] == [{"url": url, "reason": reason} for url in shown]
    assert all(f"ignored {url}: {reason}" in warnings(stderr) for url in shown)
    assert summary["files"]["new"] == 2


def test_a_url_longer_than_the_ledger_holds_is_ignored(warehouse: Warehouse, data: Path) -> None:
    deep = data / "song_data"
    while len(os.fsencode(deep)) <= MAX_URL_BYTES:
        deep = deep / ("d" * 200)
    deep.mkdir(parents=True)
    long_path = deep / "TRLONG.json"
    long_path.write_text(json.dumps(song("SO8", "Long", "Someone", 1.0)))
    fits = data / "song_data"
    while len(os.fsencode(fits / ("e" * 200) / "x.json")) <= MAX_URL_BYTES:
        fits = fits / ("e" * 200)
    fits = fits / ("e" * (MAX_URL_BYTES - len(os.fsencode(fits / "x.json")) - 1)) / "x.json"
    fits.parent.mkdir(parents=True)
    fits.write_text(json.dumps(song("SO7", "Fits", "Someone", 1.0)))

    summary, stderr = run(warehouse, data)

    reason = f"the URL is longer than {MAX_URL_BYTES:,} bytes, the most the ledger holds"
    assert summary["ignored"] == [{"url": str(long_path), "reason": reason}]
    assert f"ignored {long_path}: {reason}" in warnings(stderr)
    assert summary["files"]["new"] == 3
    urls = [url for (url,) in warehouse.query("SELECT url FROM etl_files")]
    assert str(fits) in urls and len(str(fits).encode()) == MAX_URL_BYTES

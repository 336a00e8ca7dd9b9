"""Parse tasks: rows go to part files, counts and rejects come back, in the files' order,
the same whether the tasks run inline or in worker processes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_records import event

from sparkify import parsing
from sparkify.errors import SourceError
from sparkify.parsing import Parser
from sparkify.sources import LocalSource, fingerprint


@pytest.fixture(params=["inline", "workers"])
def parser(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if request.param == "workers":
        monkeypatch.setattr(parsing, "PARALLEL_PARSE_BYTES", 0)
        monkeypatch.setattr(parsing, "TASK_FILES", 2)  # several tasks for a few files
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Parser(scratch, "json") as parser:
        yield parser


def write_days(root: Path, days: int) -> LocalSource:
    root.mkdir()
    for day in range(1, days + 1):
        lines = [event(ts=1541030400000 + day, itemInSession=n) for n in range(day)]
        (root / f"2018-11-{day:02d}-events.json").write_bytes(b"\n".join([*lines, b"{broken"]))
    return LocalSource(str(root))


def test_rows_land_in_part_files_and_counts_come_back_in_order(
    parser: Parser, tmp_path: Path
) -> None:
    source = write_days(tmp_path / "logs", 5)
    files = source.list_files()
    ids = {f.url: n for n, f in enumerate(files, start=1)}
    results = list(parser.parse(source, "events", files, ids, {}, lambda done, **counts: None))
    assert [file.url for file, _ in results] == [f.url for f in files]
    assert [r.lines_read for _, r in results] == [2, 3, 4, 5, 6]
    assert [r.rows_staged for _, r in results] == [1, 2, 3, 4, 5]
    assert all([reject.line_no for reject in r.rejects] == [r.lines_read] for _, r in results)
    rows = [
        orjson.loads(line)
        for part in {r.part for _, r in results}
        if part is not None
        for line in part.read_bytes().splitlines()
    ]
    assert sorted((row["file_id"], row["line_no"]) for row in rows) == [
        (file_id, line) for file_id in range(1, 6) for line in range(1, file_id + 1)
    ]


def test_content_already_loaded_is_fingerprinted_not_parsed(parser: Parser, tmp_path: Path) -> None:
    source = write_days(tmp_path / "logs", 2)
    files = source.list_files()
    loaded = {files[0].url: fingerprint(Path(files[0].url).read_bytes())}
    ids = {f.url: n for n, f in enumerate(files, start=1)}
    parsed = parser.parse(source, "events", files, ids, loaded, lambda done, **counts: None)
    (first, same), (_, new) = parsed
    assert (same.unchanged, same.lines_read, same.part) == (True, 0, None)
    assert same.fingerprint == loaded[first.url]
    assert not new.unchanged and new.rows_staged == 2


def test_a_file_gone_after_listing_is_one_clear_error(parser: Parser, tmp_path: Path) -> None:
    source = write_days(tmp_path / "logs", 3)
    files = source.list_files()
    Path(files[1].url).unlink()
    ids = {f.url: n for n, f in enumerate(files, start=1)}
    with pytest.raises(SourceError, match=r"cannot read .*02-events\.json: No such file"):
        list(parser.parse(source, "events", files, ids, {}, lambda done, **counts: None))


# -- large files are streamed in chunks --------------------------------------------------------

STREAMED_LINES = [
    b"\xef\xbb\xbf" + event(itemInSession=0),  # a byte-order mark opens the file
    b"",
    event(itemInSession=1, song="x" * 200) + b"\r",
    b"{broken",
    b"   ",
    event(itemInSession=2, userId=" 8 "),
    event(itemInSession=3, country="PT"),  # an unknown field, counted
    *[event(itemInSession=n) for n in range(4, 40)],
    b'{"ts": "\xff"}',
]


@pytest.mark.parametrize("row_format", ["json", "rawjson", "pgcopy"])
@pytest.mark.parametrize("ending", [b"", b"\n", b"\n\n"])
def test_a_file_streamed_in_chunks_parses_as_it_does_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_format: str, ending: bytes
) -> None:
    """Chunks smaller than a line, cut anywhere: the same rows, rejects, line numbers,
    counts and fingerprint as the whole file parsed at once."""
    data = b"\n".join(STREAMED_LINES) + ending
    root = tmp_path / "logs"
    root.mkdir()
    (root / "2018-11-01-events.json").write_bytes(data)
    source = LocalSource(str(root))
    files = source.list_files()
    results = {}
    for chunk in (97, len(data) + 1):  # streamed, then whole
        monkeypatch.setattr(parsing, "CHUNK_BYTES", chunk)
        part = tmp_path / f"part-{chunk}"
        [result] = parsing.parse_task("events", row_format, source, _inputs(files), part)
        results[chunk] = (result, part.read_bytes())
    (streamed, streamed_rows), (whole, whole_rows) = results.values()
    assert streamed_rows == whole_rows
    assert (streamed.lines_read, streamed.rows_staged) == (whole.lines_read, whole.rows_staged)
    assert streamed.rejects == whole.rejects and [r.line_no for r in whole.rejects] == [4, 44]
    assert streamed.unknown_fields == whole.unknown_fields == {"country": 1}
    assert streamed.fingerprint == whole.fingerprint == fingerprint(data)


def test_a_known_file_streamed_with_the_same_content_is_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_days(tmp_path / "logs", 30)
    monkeypatch.setattr(parsing, "CHUNK_BYTES", 100)
    [file] = source.list_files()[-1:]
    loaded = fingerprint(Path(file.url).read_bytes())
    inputs = [parsing.FileInput(file, 1, loaded)]
    [result] = parsing.parse_task("events", "rawjson", source, inputs, tmp_path / "part")
    assert result.unchanged and result.lines_read == 0
    assert not (tmp_path / "part").exists() or not (tmp_path / "part").read_bytes()


def _inputs(files: list) -> list[parsing.FileInput]:
    return [parsing.FileInput(file, n, None) for n, file in enumerate(files, start=1)]


@pytest.mark.parametrize(("size", "pooled"), [(300, False), (parsing.HANDOFF_BYTES + 300, True)])
def test_only_bytes_beyond_the_hand_off_start_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, pooled: bool
) -> None:
    """Files of a few hundred bytes (song files) are parsed in the main process however many
    they are: handing one to a worker costs the main process about what parsing it does.
    Larger files start the workers once their bytes beyond HANDOFF_BYTES are enough."""
    monkeypatch.setattr(parsing, "PARALLEL_PARSE_BYTES", 250)
    root = tmp_path / "logs"
    root.mkdir()
    line = event(ts=1541030400000)
    for n in range(3):
        lines = [line] * (size // (len(line) + 1) + 1)
        (root / f"2018-11-{n + 1:02d}-events.json").write_bytes(b"\n".join(lines)[:size])
    source = LocalSource(str(root))
    files = source.list_files()
    ids = {f.url: n for n, f in enumerate(files, start=1)}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Parser(scratch, "json") as parser:
        parser.workers = 2
        results = list(parser.parse(source, "events", files, ids, {}, lambda *a, **k: None))
        assert (parser._pool is not None) is pooled
    assert len(results) == 3 and all(r.lines_read for _, r in results)

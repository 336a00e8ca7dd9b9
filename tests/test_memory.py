"""Bounded memory: DuckDB's memory limit is a setting, and a parse worker streams a large
event file in chunks, so its peak does not grow with the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import Warehouse, run_cli
from datasets import song, write_song
from test_records import event

from sparkify.errors import EXIT_USAGE


def _memory_limit(warehouse: Warehouse) -> str:
    return str(warehouse.query("SELECT current_setting('memory_limit')")[0][0])


def test_duckdb_gets_its_memory_limit_from_settings(tmp_path: Path) -> None:
    path = str(tmp_path / "w.duckdb")
    settings = {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path}
    warehouse = Warehouse("duckdb", ["--database", path], dict(settings))
    assert _memory_limit(warehouse) == "953.6 MiB"  # the default, 1GB, as DuckDB shows it
    warehouse.overrides[("WAREHOUSE", "MEMORY_LIMIT")] = "300MB"
    assert _memory_limit(warehouse) == "286.1 MiB"


def test_a_bad_memory_limit_is_one_clear_error(tmp_path: Path) -> None:
    songs = tmp_path / "song_data"
    write_song(songs, song("S1", "Title", "Artist", 200.0))
    (tmp_path / "log_data").mkdir()
    args = ["--database", str(tmp_path / "w.duckdb"), "--songs", str(songs)]
    result = run_cli(
        "etl",
        *args,
        "--logs",
        str(tmp_path / "log_data"),
        env={"SPARKIFY_WAREHOUSE_MEMORY_LIMIT": "lots"},
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "[WAREHOUSE] MEMORY_LIMIT" in result.stderr
    assert "Traceback" not in result.stderr


# A parse task in a fresh process: its peak resident memory (VmHWM, the new program's own:
# getrusage's ru_maxrss would keep the forking test process's peak across exec) after
# parsing one day file, read in chunks of CHUNK_BYTES.
PEAK_OF_PARSE = """
import sys
from pathlib import Path
from sparkify import parsing
from sparkify.sources import LocalSource

parsing.CHUNK_BYTES = 1024 * 1024
source = LocalSource(sys.argv[1])
inputs = [parsing.FileInput(file, 1, None) for file in source.list_files()]
[result] = parsing.parse_task("events", "rawjson", source, inputs, parsing.Path(sys.argv[2]))
assert result.rows_staged == int(sys.argv[3]), result
status = Path("/proc/self/status").read_text().splitlines()
print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
"""


def _parse_peak_kib(lines: int, folder: Path) -> int:
    folder.mkdir()
    line = event(song="A song title of some length", artist="An artist")
    (folder / "2018-11-01-events.json").write_bytes(b"\n".join([line] * lines))
    run = subprocess.run(
        [sys.executable, "-c", PEAK_OF_PARSE, str(folder), str(folder / "part"), str(lines)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(run.stdout)


def test_a_parse_worker_peak_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """About 3 MB and 30 MB of events: the whole file read at once would add about three
    times its size (its bytes, its lines, its rows) to the peak; streamed in 1 MiB chunks,
    the larger file adds what a chunk costs, whatever its size."""
    small = _parse_peak_kib(8_000, tmp_path / "small")
    large = _parse_peak_kib(80_000, tmp_path / "large")
    assert large - small < 12 * 1024, (small, large)


def test_a_spill_folder_left_by_a_killed_run_is_removed(tmp_path: Path) -> None:
    """DuckDB spills beyond its memory limit into ``<file it writes>.tmp/``, the run's copy
    being ``<file>.run-<pid>``; a killed run leaves that folder, and the next run removes
    it with the copy."""
    songs = tmp_path / "song_data"
    write_song(songs, song("S1", "Title", "Artist", 200.0))
    (tmp_path / "log_data").mkdir()
    database = tmp_path / "w.duckdb"
    args = [
        "--database",
        str(database),
        "--songs",
        str(songs),
        "--logs",
        str(tmp_path / "log_data"),
    ]
    assert run_cli("etl", *args).exit_code == 0
    spill = tmp_path / "w.duckdb.run-999999.tmp"
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x")
    write_song(songs, song("S2", "Other", "Artist", 100.0))
    result = run_cli("etl", *args)
    assert result.exit_code == 0, result.stderr
    assert not spill.exists()

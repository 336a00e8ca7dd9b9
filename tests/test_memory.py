"""Bounded memory: DuckDB's memory limit is a setting, and a parse worker streams a large
event file in chunks, so its peak does not grow with the file."""

from __future__ import annotations

from pathlib import Path

from conftest import Warehouse, run_cli
from datasets import song, write_song

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

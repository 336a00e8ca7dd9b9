"""DuckDB's tables declare no primary-key or unique index (DuckDB keeps such indexes in
memory and rebuilds them at COMMIT); a run checks the same keys itself before it commits."""

from __future__ import annotations

from pathlib import Path

from conftest import _duckdb_warehouse, dump, etl
from datasets import copy_days, event_days

from sparkify.errors import EXIT_RUNTIME
from sparkify.tables import DECLARED


def test_duckdb_tables_have_no_key_indexes_but_keys_are_not_null(
    tmp_path: Path, generated: Path
) -> None:
    warehouse = _duckdb_warehouse(tmp_path)
    etl(warehouse, generated)
    constraints = warehouse.query(
        "SELECT table_name, constraint_type FROM duckdb_constraints() "
        "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
    )
    assert constraints == []
    keyed = {t.name for t in DECLARED if t.primary_key or any(c.primary_key for c in t.columns)}
    not_null = warehouse.query(
        "SELECT DISTINCT table_name FROM duckdb_constraints() WHERE constraint_type = 'NOT NULL'"
    )
    assert keyed <= {name for (name,) in not_null}


def test_a_duplicate_key_fails_the_run_before_commit(tmp_path: Path, generated: Path) -> None:
    days = event_days(generated)
    first = copy_days(generated, tmp_path / "first", days[:3])
    warehouse = _duckdb_warehouse(tmp_path)
    etl(warehouse, first)
    backend = warehouse.backend()
    backend.connect()
    with backend.transaction():  # a song given twice, by hand (the next run affects no song)
        backend.execute("INSERT INTO songs SELECT * FROM songs LIMIT 1")
    backend.close()
    before = dump(warehouse)

    copy_days(generated, first, days[3:])  # new days; the song files are the same
    result = warehouse.cli(
        "etl", "--songs", str(first / "song_data"), "--logs", str(first / "log_data")
    )
    assert result.exit_code == EXIT_RUNTIME
    assert "duplicate keys in songs (song_id)" in result.stderr
    assert dump(warehouse) == before  # rolled back

"""The ledger follows the source: moved files are recognised by their content, files that
disappeared are reported, and only ``etl --prune`` removes their rows. On every backend."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Warehouse, dump, etl
from datasets import DAY_MS, NOV_1, play, song, write_day, write_song

STAGED = "SELECT (SELECT COUNT(*) FROM staging_events), (SELECT COUNT(*) FROM staging_songs)"


@pytest.fixture
def data(semantics_data: Path) -> Path:
    """The semantics dataset, plus a second day with a rejected line and a song of its own."""
    t = NOV_1 + DAY_MS + 5_000
    write_day(
        semantics_data,
        [play(t, 3, 20, 0, song="Extra", artist="Solo", length=99.0)],
        raw_lines=[b"not json"],
    )
    write_song(semantics_data, song("SO9", "Extra", "Solo", 99.0))
    return semantics_data


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def ledger(warehouse: Warehouse) -> list[tuple]:
    return sorted(warehouse.query("SELECT file_id, url FROM etl_files"))


def test_a_moved_data_folder_moves_the_ledger_and_stages_nothing(
    warehouse: Warehouse, data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    etl(warehouse, data)
    before, staged, ids = dump(warehouse), warehouse.query(STAGED), ledger(warehouse)
    moved = tmp_path_factory.mktemp("elsewhere")
    for part in ("song_data", "log_data"):
        shutil.move(data / part, moved / part)

    summary = etl(warehouse, moved)

    assert summary["files"] == {"new": 0, "changed": 0, "skipped": 0}
    assert summary["moved"] == [
        {"from": str(data / p.relative_to(moved)), "to": str(p)} for p in files(moved)
    ]
    assert summary["missing"] == [] and summary["lines_read"] == 0
    assert warehouse.query(STAGED) == staged  # nothing staged twice
    assert dump(warehouse) == before
    assert ledger(warehouse) == [(i, url.replace(str(data), str(moved))) for i, url in ids]
    assert etl(warehouse, moved)["files"]["skipped"] == len(files(moved))  # settled


def test_a_file_moved_within_the_folder_gives_the_tables_of_a_fresh_load(
    new_warehouse: Callable[[], Warehouse], data: Path
) -> None:
    loaded, fresh = new_warehouse(), new_warehouse()
    etl(loaded, data)
    first = data / "song_data" / "A" / "B" / "C" / "TRSO1.json"
    later = data / "song_data" / "Z" / "TRSO1.json"  # now ranks after TRSO2
    later.parent.mkdir()
    first.rename(later)

    summary = etl(loaded, data)

    assert summary["moved"] == [{"from": str(first), "to": str(later)}]
    assert dump(loaded) == dump(fresh_load(fresh, data))


def fresh_load(warehouse: Warehouse, data: Path) -> Warehouse:
    etl(warehouse, data)
    return warehouse


def test_deleted_files_are_reported_and_their_rows_stay(warehouse: Warehouse, data: Path) -> None:
    etl(warehouse, data)
    before, staged = dump(warehouse), warehouse.query(STAGED)
    day = files(data / "log_data")[-1]
    day.unlink()

    result = warehouse.cli(
        "etl", "--songs", str(data / "song_data"), "--logs", str(data / "log_data")
    )

    assert result.exit_code == 0, result.stderr
    assert "1 missing" in result.stdout
    [warning] = result.stderr.splitlines()  # a logged warning
    assert warning.endswith(
        f" WARNING sparkify.api: no longer in the input, rows kept until sparkify etl --prune: "
        f"{day}"
    )
    assert dump(warehouse) == before and warehouse.query(STAGED) == staged
    summary = etl(warehouse, data)
    assert (summary["missing"], summary["pruned"]) == ([str(day)], False)


def test_prune_removes_the_rows_of_deleted_files(
    new_warehouse: Callable[[], Warehouse], data: Path
) -> None:
    pruned, fresh = new_warehouse(), new_warehouse()
    etl(pruned, data)
    day = files(data / "log_data")[-1]
    song_file = data / "song_data" / "A" / "B" / "C" / "TRSO9.json"
    day.unlink()
    song_file.unlink()

    summary = etl(pruned, data, "--prune")

    assert (summary["missing"], summary["pruned"]) == (sorted([str(day), str(song_file)]), True)
    assert dump(pruned) == dump(fresh_load(fresh, data))
    urls = [url for _, url in ledger(pruned)]
    assert str(day) not in urls and str(song_file) not in urls
    assert pruned.query(STAGED) == fresh.query(STAGED)
    assert pruned.query("SELECT COUNT(*) FROM etl_rejects") == [(0,)]  # the bad line's file
    again = etl(pruned, data, "--prune")
    assert (again["missing"], again["files"]["skipped"]) == ([], len(files(data)))


def test_since_and_until_look_only_for_the_days_they_load(warehouse: Warehouse, data: Path) -> None:
    etl(warehouse, data)

    summary = etl(warehouse, data, "--since", "2018-11-02")

    assert summary["missing"] == []

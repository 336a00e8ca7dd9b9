"""How parse workers could hand DuckDB its staged event rows, measured in CPU-seconds.

Usage: ``python benchmarks/handoff.py LOG_FOLDER [ROUNDS]`` (a folder of generated event
files, e.g. ``sparkify generate --users 10000 --days 30``: every line must be good).

Each round, for each hand-off, interleaved: the worker's side (every file in chunks of
``parsing.CHUNK_BYTES``, decoded by the fast path, then encoded: JSON lines keyed by the raw
keys, as a run writes them, or Arrow record batches built column by column from the same
structs, written as Arrow IPC files), then DuckDB's side as a run does it (a warehouse file
on disk, one transaction, the default memory limit; one ``INSERT`` of every part). Two
floors: DuckDB's scan of the JSON lines alone, and its insert of the same rows from a
table it holds already (what writing the rows costs, whatever their hand-off). Prints the
median CPU-seconds of each (docs/performance.md, "The hand-off to DuckDB").
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.ipc as ipc

from sparkify.parsing import CHUNK_BYTES
from sparkify.records import FAST_PATHS, parse_events
from sparkify.staging import CANONICAL, canonical_select, row_encoder
from sparkify.tables import DECLARED, create_statement, dialect_of

ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
}
READ, _ = CANONICAL["staging_events"]
SCHEMA = pa.schema([(column, ARROW_TYPES[sql_type]) for column, sql_type in READ.items()])
FAST = FAST_PATHS["events"]
FIELDS = [f.name for f in msgspec.structs.fields(FAST.record_type)]  # in READ order


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def chunks(path: Path) -> list[tuple[int, bytes]]:
    """(first line number, bytes) of each chunk of the file, cut after a line end."""
    data, result, line_no = path.read_bytes(), [], 1
    while data:
        cut = data.rfind(b"\n", 0, CHUNK_BYTES) + 1 if len(data) > CHUNK_BYTES else len(data)
        result.append((line_no, data[:cut]))
        line_no += data.count(b"\n", 0, cut)
        data = data[cut:]
    return result


def json_worker(files: list[Path], out: Path) -> list[Path]:
    encode = row_encoder("staging_events", "rawjson")
    parts = []
    for file_id, path in enumerate(files, 1):
        part = out / f"{file_id}.json"
        with part.open("wb") as sink:
            for first, data in chunks(path):
                parsed = parse_events(data, file_id, encode, first)
                assert not parsed.rejects, "the benchmark wants good lines only"
                sink.write(parsed.data)
        parts.append(part)
    return parts


def arrow_worker(files: list[Path], out: Path) -> list[Path]:
    parts = []
    for file_id, path in enumerate(files, 1):
        part = out / f"{file_id}.arrow"
        with part.open("wb") as sink, ipc.new_file(sink, SCHEMA) as writer:
            for first, data in chunks(path):
                body = data.rstrip(b"\r\n")
                count = body.count(b"\n") + 1
                joined = b"[" + body.replace(b"\n", b"\n,") + b"]"
                records = FAST.block(joined, range(first, first + count), file_id)
                assert records is not None, "the benchmark wants good lines only"
                arrays = [
                    pa.array([getattr(r, name) for r in records], type=SCHEMA.field(i).type)
                    for i, name in enumerate(FIELDS)
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=SCHEMA))
        parts.append(part)
    return parts


SELECTED = ", ".join(f'"{c}"' for c in READ) + ", epoch_ms(ts)"


def json_insert(con: duckdb.DuckDBPyConnection, parts: list[Path]) -> float:
    started = cpu()
    sql = f"INSERT INTO staging_events {canonical_select('staging_events')}"
    con.execute(sql, {"path": [str(p) for p in parts]})
    return cpu() - started


def arrow_insert(con: duckdb.DuckDBPyConnection, parts: list[Path]) -> float:
    started = cpu()
    staged = pa.concat_tables([ipc.open_file(pa.memory_map(str(p))).read_all() for p in parts])
    con.register("staged", staged)
    con.execute(f"INSERT INTO staging_events SELECT {SELECTED} FROM staged")
    return cpu() - started


def json_scan(con: duckdb.DuckDBPyConnection, parts: list[Path]) -> float:
    started = cpu()
    every = "artist IS NOT NULL OR user_agent IS NOT NULL OR registration > 0"
    sql = f"SELECT count(*) FROM ({canonical_select('staging_events')}) WHERE {every}"
    con.execute(sql, {"path": [str(p) for p in parts]}).fetchall()
    return cpu() - started


def write_only(con: duckdb.DuckDBPyConnection, parts: list[Path]) -> float:
    con.execute("COMMIT")  # one transaction writes one database: fill the other first
    con.execute("ATTACH ':memory:' AS held")
    sql = f"CREATE TABLE held.staged AS {canonical_select('staging_events')}"
    con.execute(sql, {"path": [str(p) for p in parts]})
    con.execute("BEGIN")
    started = cpu()
    con.execute("INSERT INTO staging_events SELECT * FROM held.staged")
    return cpu() - started


def in_a_run(database: Path, load: Callable[..., float], parts: list[Path]) -> float:
    """CPU-seconds of ``load`` and the COMMIT, in a warehouse file as a run writes it."""
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = '1GB'")
    [table] = [t for t in DECLARED if t.name == "staging_events"]
    con.execute(create_statement(table, dialect_of(("duckdb", "common"))))
    con.execute("BEGIN")
    spent = load(con, parts)
    started = cpu()
    con.execute("COMMIT")
    con.close()
    return spent + cpu() - started


def main(logs: Path, rounds: int) -> None:
    files = sorted(logs.rglob("*.json"))
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="handoff-") as scratch:
        work = Path(scratch)
        for _ in range(rounds):
            for name, worker, load in (
                ("JSON lines", json_worker, json_insert),
                ("Arrow IPC", arrow_worker, arrow_insert),
            ):
                started = cpu()
                parts = worker(files, work)
                figures.setdefault(f"{name}: worker", []).append(cpu() - started)
                spent = in_a_run(work / "w.duckdb", load, parts)
                figures.setdefault(f"{name}: DuckDB insert", []).append(spent)
                if name == "JSON lines":
                    for floor, measure in (("scan only", json_scan), ("write only", write_only)):
                        spent = in_a_run(work / "w.duckdb", measure, parts)
                        figures.setdefault(f"JSON lines: DuckDB {floor}", []).append(spent)
                for part in parts:
                    part.unlink()
    for name, seconds in figures.items():
        each = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:32} median {statistics.median(seconds):6.2f} CPU-s ({each})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)

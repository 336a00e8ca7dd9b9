"""Each table declared once (sparkify.tables): the DDL generated for every dialect means
what the hand-written .sql files said, and the staged tables have the staged columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot

from sparkify.backends import REGISTRY, backend_class
from sparkify.staging import CANONICAL, table_columns
from sparkify.tables import DECLARED, DIALECTS, TABLES, create_statement

GOLDEN = Path(__file__).parent / "ddl"


def legacy_ddl(chain: tuple[str, ...]) -> dict[str, str]:
    """The hand-written DDL a dialect chain read, the first file naming a table winning."""
    merged: dict[str, str] = {}
    for name in reversed(chain):
        path = GOLDEN / f"{name}.sql"
        if path.exists():
            parts = re.split(r"^--\s*name:\s*(\w+)\s*$", path.read_text(), flags=re.MULTILINE)
            merged.update(zip(parts[1::2], parts[2::2], strict=True))
    return merged


@pytest.mark.parametrize("backend", sorted(REGISTRY))
def test_the_generated_ddl_means_what_the_sql_files_said(backend: str) -> None:
    cls = backend_class(backend)
    statements = cls.dialect_statements()
    legacy = legacy_ddl(cls.capabilities.sql_chain)
    assert set(legacy) == {*(f"create_{t}" for t in TABLES), "create_run_files", "create_affected"}
    for name, text in legacy.items():
        expected = [tree for tree in sqlglot.parse(text, read=backend) if tree]
        generated = [sqlglot.parse_one(sql, read=backend) for sql in statements.get(name)]
        assert generated == expected, name


def test_staged_tables_have_the_columns_the_rows_are_staged_with() -> None:
    declared = {table.name: [c.name for c in table.columns] for table in DECLARED}
    for table in CANONICAL:
        assert declared[table] == table_columns(table), table


def test_dialects_differ_only_where_declared() -> None:
    songs = next(table for table in DECLARED if table.name == "staging_songs")
    shared, postgres = (
        create_statement(songs, DIALECTS["common"]),
        create_statement(songs, DIALECTS["postgres"]),
    )
    assert postgres.replace(' COLLATE "C"', "") == shared
    rejects = next(table for table in DECLARED if table.name == "etl_rejects")
    assert '"raw" VARCHAR(65535)' in create_statement(rejects, DIALECTS["redshift"])

"""Each table declared once (sparkify.tables): the DDL generated for every dialect means
what the hand-written .sql files said, and the staged tables have the staged columns."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from sparkify.backends import REGISTRY, backend_class
from sparkify.staging import CANONICAL, table_columns
from sparkify.tables import DECLARED, DIALECTS, create_statement

GOLDEN = Path(__file__).parent / "ddl"


@pytest.mark.parametrize("backend", sorted(REGISTRY))
def test_the_generated_ddl_means_what_the_sql_files_said(backend: str) -> None:
    statements = backend_class(backend).dialect_statements()
    generated = [
        *statements.create_tables(),
        *statements.get("create_run_files"),
        *statements.get("create_affected"),
    ]
    expected = [
        tree
        for tree in sqlglot.parse((GOLDEN / f"{backend}.sql").read_text(), read=backend)
        if tree
    ]
    assert len(generated) == len(expected)
    for sql, tree in zip(generated, expected, strict=True):
        assert sqlglot.parse_one(sql, read=backend) == tree, sql


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

"""Each table declared once (sparkify.tables): the DDL generated for every dialect means
what the hand-written .sql files said, and the staged tables have the staged columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sparkify.backends import REGISTRY, backend_class
from sparkify.schema import Statements
from sparkify.staging import CANONICAL, table_columns
from sparkify.tables import DECLARED, DIALECTS, TABLES, create_statement, dialect_of

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
        if dialect_of(cls.capabilities.sql_chain).checked_keys:
            expected = [without_key_indexes(tree) for tree in expected]
        generated = [
            sqlglot.parse_one(sql, read=backend)
            for sql in statements.get(name)
            if not sql.startswith("CREATE INDEX")  # added since: see the next test
        ]
        assert generated == expected, name


def without_key_indexes(tree: exp.Expression) -> exp.Expression:
    """A table's DDL without its keys' indexes (``Dialect.checked_keys``): a primary key's
    columns are NOT NULL instead, and unique columns are plain."""
    for pk in list(tree.find_all(exp.PrimaryKey)):
        keyed = {identifier.name for identifier in pk.expressions}
        pk.pop()
        for column in tree.find_all(exp.ColumnDef):
            if column.name in keyed and not column.find(exp.NotNullColumnConstraint):
                column.append(
                    "constraints", exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())
                )
    for constraint in list(tree.find_all(exp.ColumnConstraint)):
        if isinstance(constraint.kind, exp.PrimaryKeyColumnConstraint):
            column = constraint.parent
            constraint.pop()
            if not column.find(exp.NotNullColumnConstraint):
                column.append(
                    "constraints", exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())
                )
        elif isinstance(constraint.kind, exp.UniqueColumnConstraint):
            constraint.pop()
    return tree


def test_postgresql_gets_a_brin_index_where_redshift_has_zone_maps() -> None:
    postgres = Statements(("postgres", "common"))
    indexes = {table.name: postgres.get(f"create_{table.name}")[1:] for table in DECLARED}
    assert {table: sqls for table, sqls in indexes.items() if sqls} == {
        "staging_events": [
            "CREATE INDEX IF NOT EXISTS staging_events_zone_maps ON staging_events "
            "USING brin (file_id, session_id, start_time) WITH (pages_per_range = 16)"
        ],
        "songplays": [
            "CREATE INDEX IF NOT EXISTS songplays_zone_maps ON songplays "
            "USING brin (start_time) WITH (pages_per_range = 16)"
        ],
        "user_events": [
            "CREATE INDEX IF NOT EXISTS user_events_zone_maps ON user_events "
            "USING brin (session_id) WITH (pages_per_range = 16)"
        ],
    }
    for chain in [("common",), ("redshift", "postgres", "common")]:
        assert not any("CREATE INDEX" in sql for sql in Statements(chain).create_tables())


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

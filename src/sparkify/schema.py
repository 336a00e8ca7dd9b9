"""Named SQL statements per dialect, loaded from the ``.sql`` files beside this package.

A dialect lists the files it reads, most specific first (``redshift`` → ``postgres`` →
``common``); the first file that names a statement wins. The tables' DDL comes from their
declarations (``sparkify.tables``), under the names ``create_<table>``. Statements are split on a
semicolon that ends a line, so one name may hold several statements. A line ending with
``AFFECTED_KEYS_ONLY`` is left out when a run affects every key.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from sparkify.errors import SparkifyError
from sparkify.tables import TABLES, create_statements, design_statements

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
AFFECTED_KEYS_ONLY = "-- affected keys only"

STAR_TABLES = ("songplays", "users", "songs", "artists", "time")


@cache
def _read(dialect_file: str) -> dict[str, str]:
    text = resources.files("sparkify").joinpath("sql", f"{dialect_file}.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def named_sql(file: str) -> dict[str, str]:
    """The ``-- name:`` blocks of ``sql/<file>.sql``, by name."""
    return _read(file)


def split_statements(sql: str) -> list[str]:
    """Split on semicolons that end a line; drop comment-only pieces."""
    pieces = re.split(r";[ \t]*(?:\n|$)", sql)
    result = []
    for piece in pieces:
        code = "\n".join(
            line for line in piece.splitlines() if not line.strip().startswith("--")
        ).strip()
        if code:
            result.append(code)
    return result


class Statements:
    """The statements of one dialect chain."""

    def __init__(self, chain: tuple[str, ...]) -> None:
        self.chain = chain
        merged = create_statements(chain)  # a dialect file may override one by name
        for dialect_file in reversed(chain):
            merged.update(_read(dialect_file))
        self._by_name = merged

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str, all_keys: bool = False) -> list[str]:
        """The statements stored under ``name``; ``all_keys``: without the lines that only
        a run affecting some of the keys needs."""
        try:
            body = self._by_name[name]
        except KeyError:
            raise SparkifyError(f"no SQL statement named {name!r} for {self.chain[0]}") from None
        if all_keys:
            lines = body.splitlines()
            body = "\n".join(line for line in lines if not line.endswith(AFFECTED_KEYS_ONLY))
        return split_statements(body)

    def table_ddl(self) -> dict[str, list[str]]:
        """Each table's DDL, in dependency order."""
        return {
            table: self.get(name)
            for name in self._by_name
            if name.startswith("create_") and (table := name.removeprefix("create_")) in TABLES
        }

    def design(self) -> dict[str, str]:
        """The statements that bring an existing table to its declared physical design, by
        what ``physical_design`` reports once it has it (``tables.design_statements``)."""
        return design_statements(self.chain)

    def create_tables(self) -> list[str]:
        """The DDL for every table, in dependency order."""
        return [sql for sqls in self.table_ddl().values() for sql in sqls]

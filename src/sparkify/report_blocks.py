"""The report's building blocks: charts, tables and notes, the sections they form, the
headline cards, what the header says about the loads (``Health``), and how values read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sparkify import quality

if TYPE_CHECKING:
    from collections import Counter

    from markupsafe import Markup


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    query: str | None = None  # the named query behind it, if any
    note: str = ""
    wide: bool = False  # spans the whole grid row
    command: str = ""  # the command that prints the same rows
    detail: Table | None = None  # the rows behind it, folded under it

    @property
    def source(self) -> str:
        return self.command or (f"sparkify query {self.query}" if self.query else "")

    @property
    def numeric(self) -> list[bool]:
        """Per column: holds numbers (right-aligned), judged by every row, not the first."""
        return [
            any(is_number(row[i]) for row in self.rows)
            and all(is_number(row[i]) or row[i] is None for row in self.rows)
            for i in range(len(self.columns))
        ]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: Markup
    data: Table  # the numbers behind the chart, shown under it
    caption: str = ""


@dataclass(frozen=True)
class Note:
    id: str
    title: str
    paragraphs: list[str]


Block = Chart | Table | Note


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block]


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Health:
    """What the header says about the loads: anything off shows in a warning banner."""

    lines_read: int
    rejected: int
    failed_runs: int
    failed_runs_rejected: int
    checks: quality.CheckResult
    unknown_fields: Counter[str]  # "kind.field": times seen, over every run

    @property
    def failing_checks(self) -> list[str]:
        return [c.name for c in self.checks.failed if c.severity == quality.ERROR]

    @property
    def warning_checks(self) -> list[str]:
        return [c.name for c in self.checks.failed if c.severity != quality.ERROR]

    @property
    def problems(self) -> list[str]:
        """One sentence per thing that is off, the gravest first; none when all is well."""
        found = []
        if self.failing_checks:
            found.append(
                f"{plural(len(self.failing_checks), 'quality check')} failed: "
                + ", ".join(self.failing_checks)
            )
        if self.rejected:
            found.append(f"{plural(self.rejected, 'record')} rejected ({self.rejected_share})")
        if self.failed_runs:
            found.append(
                f"{plural(self.failed_runs, 'run')} failed and changed nothing (their "
                f"{plural(self.failed_runs_rejected, 'rejected record')} are kept in "
                "etl_failed_rejects)"
            )
        if self.unknown_fields:
            fields = ", ".join(f"{name} ({n:,})" for name, n in self.unknown_fields.most_common(5))
            more = len(self.unknown_fields) - 5
            found.append(
                f"{plural(len(self.unknown_fields), 'unknown field')} in the raw data, which no "
                f"column holds: {fields}" + (f" and {more} more" if more > 0 else "")
            )
        if self.warning_checks:
            found.append(
                f"{plural(len(self.warning_checks), 'check')} with warnings: "
                + ", ".join(self.warning_checks)
            )
        return found

    @property
    def rejected_share(self) -> str:
        share = 100.0 * self.rejected / self.lines_read if self.lines_read else 0.0
        return f"{share:.{1 if share >= 0.1 else 2}f}% of {self.lines_read:,} lines read"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def number(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f}%"


def cell(value: Any, column: str = "") -> str:
    """A value as a table shows it; the template escapes the result."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value) if column.endswith(("_id", "_line")) else f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{float(value):,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)

"""What the Python API returns besides the checks (``quality.CheckResult``): query rows and
a run's result. Both turn into plain JSON-ready data, so the CLI prints what the library
returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sparkify.errors import ConfigError
from sparkify.pipeline import RunSummary
from sparkify.quality import CheckResult


class Rows(list[dict[str, Any]]):
    """Query results: a list of dicts, one per row, keyed by column name.

    ``columns`` keeps the column order (also when there are no rows); ``df()`` and
    ``arrow()`` convert to a pandas DataFrame or a pyarrow Table when those are installed.
    """

    def __init__(self, columns: Sequence[str], rows: Iterable[Sequence[Any]] = ()) -> None:
        self.columns: list[str] = list(columns)
        super().__init__(dict(zip(self.columns, row, strict=True)) for row in rows)

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows as tuples, in column order."""
        return [tuple(row[c] for c in self.columns) for row in self]

    def df(self) -> Any:
        """The rows as a pandas DataFrame (needs ``pip install pandas``)."""
        return _optional("pandas").DataFrame(self.tuples(), columns=self.columns)

    def arrow(self) -> Any:
        """The rows as a pyarrow Table (needs ``pip install pyarrow``)."""
        return _optional("pyarrow").table({c: [row[c] for row in self] for c in self.columns})


def _optional(module: str) -> Any:
    try:
        return __import__(module)
    except ModuleNotFoundError:
        raise ConfigError(
            f"this needs {module}, which is not installed: pip install {module}"
        ) from None


@dataclass
class RunResult(RunSummary):
    """One ETL run: its summary (files, records, rows per table, seconds) and the quality
    checks that ran after it (``checks`` is ``None`` when the run skipped them)."""

    checks: CheckResult | None = field(default=None)

    @classmethod
    def of(cls, summary: RunSummary, checks: CheckResult | None) -> RunResult:
        values = {f.name: getattr(summary, f.name) for f in fields(RunSummary)}
        return cls(**values, checks=checks)

    def summary_line(self) -> str:
        """The run in one line for people, the checks included."""
        counts = [(len(self.ignored), "ignored"), (len(self.moved), "moved")]
        counts.append((len(self.missing), "missing, pruned" if self.pruned else "missing"))
        ignored = "".join(f", {n} {what}" for n, what in counts if n)
        checks = f"; {self.checks.summary()}" if self.checks is not None else ""
        return (
            f"run {self.run_id} into {self.warehouse}: {self.files_new} new, "
            f"{self.files_changed} changed, {self.files_skipped} unchanged{ignored} files; "
            f"{self.lines_read:,} records read, {self.rows_staged:,} staged, "
            f"{self.rows_rejected:,} rejected in {self.seconds:.2f} s{checks}"
        )

    def missing_line(self, shown: int = 5) -> str:
        """Known files that are no longer in the input, and what happens to their rows."""
        urls = [known.url for known in self.missing[:shown]]
        if len(self.missing) > shown:
            urls.append(f"and {len(self.missing) - shown} more")
        return "no longer in the input, rows kept until sparkify etl --prune: " + ", ".join(urls)

    def as_dict(self) -> dict[str, Any]:
        report = super().as_dict()
        if self.checks is not None:
            report["checks"] = self.checks.as_list()
            report["checks_ran"] = self.checks.ran
            report["checks_passed"] = self.checks.passed
        return report

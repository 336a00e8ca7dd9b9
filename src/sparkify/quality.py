"""Declarative data-quality checks. Each check is a query counting offending rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sparkify.backends import Backend
from sparkify.errors import QualityCheckFailed

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    sql: str  # returns one number: offending rows (0 = pass)
    severity: str = ERROR


def _unique_not_null(table: str, *key: str) -> Check:
    columns = ", ".join(key)
    nulls = " OR ".join(f"{c} IS NULL" for c in key)
    return Check(
        f"{table}_key",
        f"{table} ({columns}) is unique and never null",
        f"SELECT (SELECT COUNT(*) FROM {table} WHERE {nulls}) + "
        f"(SELECT COUNT(*) FROM (SELECT {columns} FROM {table} "
        f"GROUP BY {columns} HAVING COUNT(*) > 1) duplicates)",
    )


def _references(name: str, column: str, target: str, target_column: str) -> Check:
    return Check(
        name,
        f"every non-null songplays.{column} has a row in {target}",
        f"SELECT COUNT(*) FROM songplays p WHERE p.{column} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {target} t WHERE t.{target_column} = p.{column})",
    )


CHECKS: tuple[Check, ...] = (
    _unique_not_null("songplays", "songplay_id"),
    _unique_not_null("users", "user_id"),
    _unique_not_null("songs", "song_id"),
    _unique_not_null("artists", "artist_id"),
    _unique_not_null("time", "start_time"),
    _unique_not_null("user_levels", "user_id", "valid_from"),
    _references("songplays_users", "user_id", "users", "user_id"),
    _references("songplays_time", "start_time", "time", "start_time"),
    _references("songplays_songs", "song_id", "songs", "song_id"),
    _references("songplays_artists", "artist_id", "artists", "artist_id"),
    Check(
        "songplays_user_known",
        "every songplay has a user_id",
        "SELECT COUNT(*) FROM songplays WHERE user_id IS NULL",
        WARNING,
    ),
    Check(
        "nextsong_events_are_songplays",
        "distinct staged NextSong events = songplays",
        "SELECT ABS((SELECT COUNT(*) FROM (SELECT DISTINCT session_id, item_in_session "
        "FROM staging_events WHERE page = 'NextSong') plays) - "
        "(SELECT COUNT(*) FROM songplays))",
    ),
    Check(
        "no_future_timestamps",
        "no songplay starts after the check runs",
        "SELECT COUNT(*) FROM songplays WHERE start_time > :now",
    ),
    Check(
        "ledger_reconciles",
        "for every file: lines read = rows staged + rows rejected",
        "SELECT COUNT(*) FROM etl_files WHERE lines_read <> rows_staged + rows_rejected",
    ),
    Check(
        "ledger_matches_staging",
        "rows staged per file in the ledger = rows in the staging tables",
        "SELECT COUNT(*) FROM etl_files f LEFT JOIN (SELECT file_id, COUNT(*) AS n FROM "
        "(SELECT file_id FROM staging_events UNION ALL SELECT file_id FROM staging_songs) rows "
        "GROUP BY file_id) staged ON staged.file_id = f.file_id "
        "WHERE f.rows_staged <> COALESCE(staged.n, 0)",
    ),
    Check(
        "rejects_match_ledger",
        "rejected records kept in etl_rejects = rows rejected in the ledger",
        "SELECT ABS((SELECT COALESCE(SUM(rows_rejected), 0) FROM etl_files) - "
        "(SELECT COUNT(*) FROM etl_rejects))",
    ),
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    severity: str
    failing_rows: int

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def run_checks(backend: Backend, checks: tuple[Check, ...] = CHECKS) -> list[CheckResult]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    results = []
    for check in checks:
        params = {"now": now} if ":now" in check.sql else None
        count = int(backend.query(check.sql, params).scalar() or 0)
        results.append(CheckResult(check.name, check.description, check.severity, count))
    return results


def failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.severity == ERROR and not r.passed]


def raise_on_failure(results: list[CheckResult]) -> None:
    bad = failed(results)
    if bad:
        names = ", ".join(f"{r.name} ({r.failing_rows} rows)" for r in bad)
        raise QualityCheckFailed(f"{len(bad)} data-quality check(s) failed: {names}")

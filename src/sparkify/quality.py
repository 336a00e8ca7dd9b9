"""Declarative data-quality checks. Each check is a query counting offending rows."""

from __future__ import annotations

import datetime as dt
import logging
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from sparkify.backends import Backend
from sparkify.errors import QualityCheckFailed

ERROR = "error"
WARNING = "warning"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    # Returns offending rows (0 = pass) in its column ``column``: checks that read the same
    # rows share one query (the same text), each reading its own column of its one row.
    sql: str
    severity: str = ERROR
    column: int = 0
    # (table, key columns in name order): a primary key the backend enforces answers the
    # check without a query (``Backend.enforced_keys``); without one, the query decides.
    key: tuple[str, tuple[str, ...]] | None = None


def _unique_not_null(table: str, *key: str) -> Check:
    columns = ", ".join(key)
    nulls = " OR ".join(f"{c} IS NULL" for c in key)
    return Check(
        f"{table}_key",
        f"{table} ({columns}) is unique and never null",
        f"SELECT (SELECT COUNT(*) FROM {table} WHERE {nulls}) + "
        f"(SELECT COUNT(*) FROM (SELECT {columns} FROM {table} "
        f"GROUP BY {columns} HAVING COUNT(*) > 1) duplicates)",
        key=(table, tuple(sorted(key))),
    )


# One pass over the staged events, by event (session and item), serves two checks: the
# distinct events against user_events, those with a NextSong copy against songplays.
_STAGED_EVENTS = (
    "SELECT ABS(COALESCE(SUM(played), 0) - (SELECT COUNT(*) FROM songplays)), "
    "ABS(COUNT(*) - (SELECT COUNT(*) FROM user_events)) "
    "FROM (SELECT MAX(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END) AS played "
    "FROM staging_events GROUP BY session_id, item_in_session) events"
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
    _unique_not_null("user_events", "event_id"),
    _unique_not_null("sessions", "session_id"),
    _unique_not_null("subscription_changes", "event_id"),
    _unique_not_null("song_feedback", "event_id"),
    _unique_not_null("user_agents", "user_agent"),
    _unique_not_null("locations", "location"),
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
        _STAGED_EVENTS,
    ),
    Check(
        "staged_events_are_user_events",
        "distinct staged events = user_events",
        _STAGED_EVENTS,
        column=1,
    ),
    _references("songplays_user_events", "songplay_id", "user_events", "event_id"),
    Check(
        "sessions_match_user_events",
        "every user_event has its session, and each session's events and plays (NextSong "
        "events) are those of user_events",
        "SELECT COUNT(*) FROM sessions s FULL JOIN (SELECT session_id, COUNT(*) AS events, "
        "SUM(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END) AS plays FROM user_events "
        "GROUP BY session_id) e ON e.session_id = s.session_id "
        "WHERE s.session_id IS NULL OR e.session_id IS NULL "
        "OR s.events <> e.events OR s.plays <> e.plays",
    ),
    Check(
        "user_events_are_described",
        "every user agent and location of user_events has its row in user_agents and "
        "locations, counting its events, and those tables hold no other",
        "SELECT (SELECT COUNT(*) FROM (SELECT user_agent, COUNT(*) AS events FROM user_events "
        "WHERE user_agent IS NOT NULL GROUP BY user_agent) e "
        "FULL JOIN user_agents a ON a.user_agent = e.user_agent "
        "WHERE a.user_agent IS NULL OR e.user_agent IS NULL "
        "OR a.events IS NULL OR a.events <> e.events) + "
        "(SELECT COUNT(*) FROM (SELECT location, COUNT(*) AS events FROM user_events "
        "WHERE location IS NOT NULL GROUP BY location) e "
        "FULL JOIN locations l ON l.location = e.location "
        "WHERE l.location IS NULL OR e.location IS NULL "
        "OR l.events IS NULL OR l.events <> e.events)",
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
class CheckOutcome:
    """One check's verdict: how many rows offend it (0 = passed)."""

    name: str
    description: str
    severity: str
    failing_rows: int

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of every check, in order (iterating gives them).

    ``failed`` lists the error-severity checks that failed; a failed warning fails nothing.
    """

    outcomes: tuple[CheckOutcome, ...]

    def __iter__(self) -> Iterator[CheckOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def ran(self) -> int:
        return len(self.outcomes)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.severity == ERROR and not o.passed]

    @property
    def ok(self) -> bool:
        """True when no error-severity check failed."""
        return not self.failed

    def summary(self) -> str:
        """For people: ``26 quality checks ran, 26 passed``."""
        return f"{self.ran} quality checks ran, {self.passed} passed"

    def raise_on_failure(self, result: object = None) -> None:
        """Raise :class:`QualityCheckFailed` (exit code 4) when an error-severity check
        failed; ``result`` rides along on the exception (the run's result, say)."""
        if self.failed:
            names = ", ".join(f"{o.name} ({o.failing_rows} rows)" for o in self.failed)
            raise QualityCheckFailed(
                f"{len(self.failed)} data-quality check(s) failed: {names}",
                result if result is not None else self,
            )

    def as_list(self) -> list[dict[str, object]]:
        return [o.as_dict() for o in self.outcomes]


def run_checks(backend: Backend, checks: tuple[Check, ...] = CHECKS) -> CheckResult:
    """Every check, in order. A key check whose primary key the backend enforces passes
    without a query; checks with the same query share one. A backend with
    ``capabilities.parallel_build`` runs the queries on ``build_connections`` connections
    at once (``backend`` and read-only siblings), each taking the next query left."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    enforced = backend.enforced_keys()
    queries = list(dict.fromkeys(c.sql for c in checks if c.key not in enforced))
    parallel = backend.capabilities.parallel_build and len(queries) > 1
    share = min(backend.build_connections, len(queries)) if parallel else 1
    answers: dict[str, tuple[Any, ...]] = {}
    left: queue.SimpleQueue[str] = queue.SimpleQueue()
    for sql in queries:
        left.put(sql)

    def count(connection: Backend) -> None:
        while True:
            try:
                sql = left.get_nowait()
            except queue.Empty:
                return
            params = {"now": now} if ":now" in sql else None
            answers[sql] = connection.query(sql, params).rows[0]

    if share == 1:
        count(backend)
    else:
        with ThreadPoolExecutor(share - 1, thread_name_prefix="sparkify-checks") as pool:
            futures = [pool.submit(_on_sibling, backend, count) for _ in range(1, share)]
            count(backend)
            for future in futures:
                future.result()
    outcomes = [
        CheckOutcome(
            check.name,
            check.description,
            check.severity,
            0 if check.key in enforced else int(answers[check.sql][check.column] or 0),
        )
        for check in checks
    ]
    result = CheckResult(tuple(outcomes))
    log.info(
        "%s", result.summary(), extra={"checks_ran": result.ran, "checks_passed": result.passed}
    )
    for outcome in result.failed:
        log.info("check %s failed: %d rows", outcome.name, outcome.failing_rows)
    return result


def _on_sibling(backend: Backend, count: Callable[[Backend], None]) -> None:
    sibling = backend.sibling(read_only=True)
    try:
        count(sibling)
    finally:
        sibling.close()

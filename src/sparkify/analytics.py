"""The analytical questions, each a named query over the star schema.

``sparkify query NAME`` and the HTML report both read from this catalogue, so they cannot
disagree. The SQL is portable across DuckDB, PostgreSQL and Redshift, written with two
shorthands this module expands (see ``expand``). The questions over every event (issue #18:
activity, subscriptions, retention, feedback, devices, sessions) are in
``sql/questions.sql``.

A query's options are its bound parameters: ``:limit`` (top-N), ``:grain`` (the period:
day, week or month) and ``:since``/``:before`` (an inclusive day range; ``before`` is the
day after ``until``). Nothing is pasted into the SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sparkify.backends import Backend, Result
from sparkify.backends.base import bound_names
from sparkify.config import unknown_name_message
from sparkify.errors import ConfigError
from sparkify.schema import named_sql

GRAINS = ("day", "week", "month")
DEFAULT_GRAIN = "day"

# PERIOD(x): the day, week (starting Monday, ISO, as DATE_TRUNC does on every backend) or
# month of x, as a DATE, chosen by :grain. IN_RANGE(x): x on or after :since and before
# :before, each bound only when given (NULL: no bound).
_SHORTHANDS = {
    "PERIOD": """CAST(CASE CAST(:grain AS VARCHAR(5))
        WHEN 'day' THEN DATE_TRUNC('day', {0})
        WHEN 'week' THEN DATE_TRUNC('week', {0})
        WHEN 'month' THEN DATE_TRUNC('month', {0}) END AS DATE)""",
    "IN_RANGE": """((CAST(:since AS DATE) IS NULL OR {0} >= CAST(:since AS DATE))
        AND (CAST(:before AS DATE) IS NULL OR {0} < CAST(:before AS DATE)))""",
}
_SHORTHAND = re.compile(r"\b(" + "|".join(_SHORTHANDS) + r")\(([\w.]+)\)")


def expand(sql: str) -> str:
    """``PERIOD(column)`` and ``IN_RANGE(column)`` written out in portable SQL."""
    return _SHORTHAND.sub(lambda m: _SHORTHANDS[m.group(1)].format(m.group(2)), sql)


@dataclass(frozen=True)
class Query:
    name: str
    question: str
    sql: str

    @property
    def parameters(self) -> frozenset[str]:
        """The names bound into the SQL."""
        return frozenset(bound_names(self.sql))

    @property
    def limited(self) -> bool:
        """Top-N: takes ``limit``."""
        return "limit" in self.parameters

    @property
    def grained(self) -> bool:
        """Per period: takes ``grain``."""
        return "grain" in self.parameters

    @property
    def ranged(self) -> bool:
        """Takes a day range: ``since`` and ``until``."""
        return "since" in self.parameters

    @property
    def options(self) -> tuple[str, ...]:
        """The options a caller may give, in a fixed order."""
        takes = {"limit": self.limited, "grain": self.grained}
        takes |= {"since": self.ranged, "until": self.ranged}
        return tuple(option for option, taken in takes.items() if taken)


def _question(name: str, question: str) -> Query:
    """A question whose SQL is the block ``-- name: <name>`` of ``sql/questions.sql``."""
    return Query(name, question, expand(named_sql("questions")[name]))


_WEEKDAY_NAME = """CASE t.weekday WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday'
    WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday'
    WHEN 5 THEN 'Friday' ELSE 'Saturday' END"""


def _plays_per(period: str, name: str) -> str:
    """Plays, listeners and paid/free plays per ``period`` (a column named ``name``)."""
    return expand(
        f"""SELECT {name}, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners,
       SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS paid_plays,
       SUM(CASE WHEN level = 'free' THEN 1 ELSE 0 END) AS free_plays
FROM (SELECT {period} AS {name}, p.user_id, p.level FROM songplays p
      WHERE IN_RANGE(p.start_time)) p
GROUP BY {name}
ORDER BY {name}"""
    )


def _level_changes_per(period: str, name: str) -> str:
    """Upgrades and downgrades (from the user_levels history) per ``period``."""
    return expand(
        f"""SELECT {name},
       SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS upgrades,
       SUM(CASE WHEN level = 'free' THEN 1 ELSE 0 END) AS downgrades
FROM (SELECT {period} AS {name}, l.level FROM user_levels l
      WHERE EXISTS (SELECT 1 FROM user_levels earlier
                    WHERE earlier.user_id = l.user_id AND earlier.valid_to = l.valid_from)
        AND IN_RANGE(l.valid_from)) l
GROUP BY {name}
ORDER BY {name}"""
    )


QUERIES: tuple[Query, ...] = (
    Query(
        "top_songs",
        "Which songs are played most (plays matched to the catalogue)?",
        expand(
            """SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays p
JOIN songs s ON s.song_id = p.song_id
LEFT JOIN artists a ON a.artist_id = p.artist_id
WHERE IN_RANGE(p.start_time)
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title, a.name
LIMIT :limit"""
        ),
    ),
    Query(
        "top_artists",
        "Which artists are played most (plays matched to the catalogue)?",
        expand(
            """SELECT a.name AS artist, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN artists a ON a.artist_id = p.artist_id
WHERE IN_RANGE(p.start_time)
GROUP BY a.name
ORDER BY plays DESC, a.name
LIMIT :limit"""
        ),
    ),
    Query(
        "plays_by_hour",
        "At what hour of the day (UTC) do people listen?",
        expand(
            """SELECT t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE IN_RANGE(p.start_time)
GROUP BY t.hour
ORDER BY t.hour"""
        ),
    ),
    Query(
        "free_vs_paid",
        "How many plays come from free and from paid users?",
        expand(
            """SELECT p.level, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS users,
       ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM songplays p WHERE IN_RANGE(p.start_time)), 2)
         AS share_pct
FROM songplays p
WHERE IN_RANGE(p.start_time)
GROUP BY p.level
ORDER BY p.level"""
        ),
    ),
    Query(
        "most_active_users",
        "Who listens most?",
        expand(
            """SELECT u.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays,
       COUNT(DISTINCT p.session_id) AS sessions
FROM songplays p JOIN users u ON u.user_id = p.user_id
WHERE IN_RANGE(p.start_time)
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT :limit"""
        ),
    ),
    Query(
        "busiest_weekdays",
        "Which days of the week have the most plays?",
        expand(
            f"""SELECT t.weekday, {_WEEKDAY_NAME} AS day_name, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE IN_RANGE(p.start_time)
GROUP BY t.weekday
ORDER BY plays DESC, t.weekday"""
        ),
    ),
    Query(
        "plays_per_day",
        "How many plays, listeners and paid plays are there each day?",
        _plays_per("CAST(p.start_time AS DATE)", "day"),
    ),
    Query(
        "plays_per_period",
        "How many plays, listeners and paid plays are there each day, week or month?",
        _plays_per("PERIOD(p.start_time)", "period"),
    ),
    Query(
        "weekday_hour",
        "How do plays spread over weekday and hour (the weekly rhythm)?",
        expand(
            """SELECT t.weekday, t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE IN_RANGE(p.start_time)
GROUP BY t.weekday, t.hour
ORDER BY t.weekday, t.hour"""
        ),
    ),
    Query(
        "song_match_rate",
        "What share of plays matched a song in the catalogue, and how big is the catalogue?",
        expand(
            """SELECT COUNT(*) AS plays,
       SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END) AS matched_plays,
       ROUND(100.0 * SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END)
             / NULLIF(COUNT(*), 0), 2) AS matched_pct,
       (SELECT COUNT(*) FROM songs) AS catalogue_songs,
       (SELECT COUNT(DISTINCT e.song_key || '|' || e.artist_key)
        FROM staging_events e WHERE e.page = 'NextSong'
          AND IN_RANGE(e.start_time)) AS distinct_songs_played
FROM songplays p
WHERE IN_RANGE(p.start_time)"""
        ),
    ),
    Query(
        "level_changes",
        "How many users upgraded (free -> paid) or downgraded each day?",
        _level_changes_per("CAST(l.valid_from AS DATE)", "day"),
    ),
    Query(
        "level_changes_per_period",
        "How many users upgraded (free -> paid) or downgraded each day, week or month?",
        _level_changes_per("PERIOD(l.valid_from)", "period"),
    ),
    Query(
        "session_lengths",
        "How many songs do listeners play per session?",
        expand(
            """SELECT songs_in_session, COUNT(*) AS sessions
FROM (SELECT p.session_id, COUNT(*) AS songs_in_session
      FROM songplays p WHERE IN_RANGE(p.start_time) GROUP BY p.session_id) s
GROUP BY songs_in_session
ORDER BY songs_in_session"""
        ),
    ),
    Query(
        "summary",
        "Headline figures: plays, listeners, songs, artists, paid share and date range.",
        expand(
            """SELECT COUNT(*) AS plays,
       COUNT(DISTINCT p.user_id) AS listeners,
       (SELECT COUNT(*) FROM users) AS users,
       (SELECT COUNT(*) FROM songs) AS songs,
       (SELECT COUNT(*) FROM artists) AS artists,
       ROUND(100.0 * SUM(CASE WHEN p.level = 'paid' THEN 1 ELSE 0 END)
             / NULLIF(COUNT(*), 0), 2) AS paid_pct,
       MIN(p.start_time) AS first_play,
       MAX(p.start_time) AS last_play
FROM songplays p
WHERE IN_RANGE(p.start_time)"""
        ),
    ),
    _question("active_users", "How many users are active per day, week or month, paid and free?"),
    _question(
        "new_vs_returning",
        "How many of each period's active users are new, and how many come back?",
    ),
    _question("retention", "Of the users who started in a week, how many are active weeks later?"),
    _question(
        "conversion", "How many free users go to the upgrade page, upgrade and pay, and how fast?"
    ),
    _question("churn", "How many cancellations, downgrades and upgrades are there per period?"),
    _question("song_feedback", "Which songs get the most thumbs up, and which the most down?"),
    _question("devices", "Which browsers, systems and devices do people listen on?"),
    _question(
        "session_stats", "How many sessions are there per period, how long, with how many plays?"
    ),
    Query(
        "recent_runs",
        "What did the last ETL runs do, and did they succeed?",
        """SELECT run_id, status, started_at, finished_at, files_new, files_changed,
       files_skipped, lines_read, rows_staged, rows_rejected, songplays_rows, message,
       unknown_fields
FROM etl_runs
ORDER BY run_id DESC
LIMIT :limit""",
    ),
    Query(
        "load_health",
        "Is anything off in the loads: rejected records, failed runs, unknown fields?",
        """SELECT (SELECT COUNT(*) FROM etl_files) AS files,
       (SELECT SUM(lines_read) FROM etl_files) AS lines_read,
       (SELECT COUNT(*) FROM etl_rejects) AS rows_rejected,
       (SELECT COUNT(*) FROM etl_runs) AS runs,
       (SELECT COUNT(*) FROM etl_runs WHERE status = 'failed') AS failed_runs,
       (SELECT COUNT(*) FROM etl_failed_rejects) AS failed_runs_rejected,
       (SELECT COUNT(*) FROM etl_runs WHERE unknown_fields IS NOT NULL)
         AS runs_with_unknown_fields""",
    ),
    Query(
        "unknown_fields",
        "Which fields of the raw data does no column hold, per run (JSON: kind, field, count)?",
        """SELECT run_id, unknown_fields
FROM etl_runs
WHERE unknown_fields IS NOT NULL
ORDER BY run_id""",
    ),
    Query(
        "files_loaded",
        "How many raw files of each kind are loaded, and how many of their records were kept?",
        """SELECT kind, COUNT(*) AS files, SUM(lines_read) AS lines_read,
       SUM(rows_staged) AS rows_staged, SUM(rows_rejected) AS rows_rejected,
       MAX(last_run_id) AS last_run_id
FROM etl_files
GROUP BY kind
ORDER BY kind""",
    ),
    Query(
        "rejects_by_reason",
        "Why were records rejected: every reason, with its records and files?",
        """SELECT r.reason, COUNT(*) AS rejected, COUNT(DISTINCT r.file_id) AS files
FROM etl_rejects r
GROUP BY r.reason
ORDER BY rejected DESC, r.reason""",
    ),
    Query(
        "rejects_by_file",
        "Which files had records rejected, and why?",
        """SELECT f.url AS file, r.reason, COUNT(*) AS rejected, MIN(r.line_no) AS first_line
FROM etl_rejects r JOIN etl_files f ON f.file_id = r.file_id
GROUP BY f.url, r.reason
ORDER BY f.url, first_line, r.reason
LIMIT :limit""",
    ),
)
QUERIES_BY_NAME = {q.name: q for q in QUERIES}
DEFAULT_LIMIT = 10


def get_query(name: str) -> Query:
    if name not in QUERIES_BY_NAME:
        raise ConfigError(unknown_name_message("query", name, tuple(QUERIES_BY_NAME)))
    return QUERIES_BY_NAME[name]


def bind(
    query: Query,
    limit: int = DEFAULT_LIMIT,
    *,
    grain: str = DEFAULT_GRAIN,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> dict[str, Any]:
    """The values bound into ``query``'s SQL: only those it takes."""
    if grain not in GRAINS:
        raise ConfigError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    before = until + dt.timedelta(days=1) if until else None
    values = {"limit": limit, "grain": grain, "since": since, "before": before}
    return {name: value for name, value in values.items() if name in query.parameters}


def run_query(
    backend: Backend,
    name: str,
    limit: int = DEFAULT_LIMIT,
    *,
    grain: str = DEFAULT_GRAIN,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Result:
    """Answer the named question; options a query does not take are ignored (see
    ``Query.options`` for those it takes)."""
    query = get_query(name)
    params = bind(query, limit, grain=grain, since=since, until=until)
    return backend.query(query.sql, params or None)

"""The analytical questions, each a named query over the star schema.

``sparkify query NAME`` and the HTML report both read from this catalogue, so they cannot
disagree. The SQL is portable across DuckDB, PostgreSQL and Redshift. Parameters are bound,
never pasted: ``:limit`` (top-N queries), ``:since``/``:until`` (an inclusive range of days
on the event time; NULL leaves that end open) and ``:grain`` (``day``, ``week`` or
``month``: the period rows are counted by, each named by its first day; weeks start on
Monday).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sparkify.backends import Backend, Result
from sparkify.config import unknown_name_message
from sparkify.errors import ConfigError

GRAINS = ("day", "week", "month")


@dataclass(frozen=True)
class Query:
    name: str
    question: str
    sql: str
    limited: bool = False  # takes :limit
    dated: bool = False  # takes :since and :until
    grained: bool = False  # takes :grain

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameters it takes, as ``sparkify query`` options and API keywords."""
        taken = {"limit": self.limited, "since": self.dated, "until": self.dated}
        return tuple(name for name, takes in (taken | {"grain": self.grained}).items() if takes)


def _in_range(column: str) -> str:
    """True when the day of ``column`` is within [:since, :until] (NULL: that end open)."""
    day = f"CAST({column} AS DATE)"
    return (
        f"(CAST(:since AS DATE) IS NULL OR {day} >= CAST(:since AS DATE))\n"
        f"  AND (CAST(:until AS DATE) IS NULL OR {day} <= CAST(:until AS DATE))"
    )


def _period(column: str) -> str:
    """The first day of the :grain period that ``column`` falls in."""
    return (
        f"CAST(CASE CAST(:grain AS VARCHAR(8)) WHEN 'month' THEN DATE_TRUNC('month', {column})\n"
        f"  WHEN 'week' THEN DATE_TRUNC('week', {column}) ELSE DATE_TRUNC('day', {column}) END"
        " AS DATE)"
    )


_WEEKDAY_NAME = """CASE t.weekday WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday'
    WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday'
    WHEN 5 THEN 'Friday' ELSE 'Saturday' END"""
_PLAYS = _in_range("p.start_time")


def _plays_per(period: str, name: str) -> str:
    """Plays, listeners and paid/free plays per ``period`` (a column named ``name``)."""
    return f"""SELECT {name}, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners,
       SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS paid_plays,
       SUM(CASE WHEN level = 'free' THEN 1 ELSE 0 END) AS free_plays
FROM (SELECT {period} AS {name}, p.user_id, p.level FROM songplays p
      WHERE {_PLAYS}) p
GROUP BY {name}
ORDER BY {name}"""


def _level_changes_per(period: str, name: str) -> str:
    """Upgrades and downgrades (from the user_levels history) per ``period``."""
    return f"""SELECT {name},
       SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END) AS upgrades,
       SUM(CASE WHEN level = 'free' THEN 1 ELSE 0 END) AS downgrades
FROM (SELECT {period} AS {name}, l.level FROM user_levels l
      WHERE EXISTS (SELECT 1 FROM user_levels earlier
                    WHERE earlier.user_id = l.user_id AND earlier.valid_to = l.valid_from)
        AND {_in_range("l.valid_from")}) l
GROUP BY {name}
ORDER BY {name}"""


QUERIES: tuple[Query, ...] = (
    Query(
        "top_songs",
        "Which songs are played most (plays matched to the catalogue)?",
        f"""SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays p
JOIN songs s ON s.song_id = p.song_id
LEFT JOIN artists a ON a.artist_id = p.artist_id
WHERE {_PLAYS}
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title, a.name
LIMIT :limit""",
        limited=True,
        dated=True,
    ),
    Query(
        "top_artists",
        "Which artists are played most (plays matched to the catalogue)?",
        f"""SELECT a.name AS artist, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN artists a ON a.artist_id = p.artist_id
WHERE {_PLAYS}
GROUP BY a.name
ORDER BY plays DESC, a.name
LIMIT :limit""",
        limited=True,
        dated=True,
    ),
    Query(
        "plays_by_hour",
        "At what hour of the day (UTC) do people listen?",
        f"""SELECT t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE {_PLAYS}
GROUP BY t.hour
ORDER BY t.hour""",
        dated=True,
    ),
    Query(
        "free_vs_paid",
        "How many plays come from free and from paid users?",
        f"""SELECT p.level, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS users,
       ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM songplays p WHERE {_PLAYS}), 2)
         AS share_pct
FROM songplays p
WHERE {_PLAYS}
GROUP BY p.level
ORDER BY p.level""",
        dated=True,
    ),
    Query(
        "most_active_users",
        "Who listens most?",
        f"""SELECT u.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays,
       COUNT(DISTINCT p.session_id) AS sessions
FROM songplays p JOIN users u ON u.user_id = p.user_id
WHERE {_PLAYS}
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT :limit""",
        limited=True,
        dated=True,
    ),
    Query(
        "busiest_weekdays",
        "Which days of the week have the most plays?",
        f"""SELECT t.weekday, {_WEEKDAY_NAME} AS day_name, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE {_PLAYS}
GROUP BY t.weekday
ORDER BY plays DESC, t.weekday""",
        dated=True,
    ),
    Query(
        "plays_per_day",
        "How many plays, listeners and paid plays are there each day?",
        _plays_per("CAST(p.start_time AS DATE)", "day"),
        dated=True,
    ),
    Query(
        "plays_per_period",
        "How many plays, listeners and paid plays are there each day, week or month?",
        _plays_per(_period("p.start_time"), "period"),
        dated=True,
        grained=True,
    ),
    Query(
        "weekday_hour",
        "How do plays spread over weekday and hour (the weekly rhythm)?",
        f"""SELECT t.weekday, t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
WHERE {_PLAYS}
GROUP BY t.weekday, t.hour
ORDER BY t.weekday, t.hour""",
        dated=True,
    ),
    Query(
        "song_match_rate",
        "What share of plays matched a song in the catalogue, and how big is the catalogue?",
        f"""SELECT COUNT(*) AS plays,
       SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END) AS matched_plays,
       ROUND(100.0 * SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END)
             / NULLIF(COUNT(*), 0), 2) AS matched_pct,
       (SELECT COUNT(*) FROM songs) AS catalogue_songs,
       (SELECT COUNT(DISTINCT e.song_key || '|' || e.artist_key)
        FROM staging_events e WHERE e.page = 'NextSong'
          AND {_in_range("e.start_time")}) AS distinct_songs_played
FROM songplays p
WHERE {_PLAYS}""",
        dated=True,
    ),
    Query(
        "level_changes",
        "How many users upgraded (free -> paid) or downgraded each day?",
        _level_changes_per("CAST(l.valid_from AS DATE)", "day"),
        dated=True,
    ),
    Query(
        "level_changes_per_period",
        "How many users upgraded (free -> paid) or downgraded each day, week or month?",
        _level_changes_per(_period("l.valid_from"), "period"),
        dated=True,
        grained=True,
    ),
    Query(
        "session_lengths",
        "How many songs do listeners play per session?",
        f"""SELECT songs_in_session, COUNT(*) AS sessions
FROM (SELECT p.session_id, COUNT(*) AS songs_in_session
      FROM songplays p WHERE {_PLAYS} GROUP BY p.session_id) s
GROUP BY songs_in_session
ORDER BY songs_in_session""",
        dated=True,
    ),
    Query(
        "summary",
        "Headline figures: plays, listeners, songs, artists, paid share and date range.",
        f"""SELECT COUNT(*) AS plays,
       COUNT(DISTINCT p.user_id) AS listeners,
       (SELECT COUNT(*) FROM users) AS users,
       (SELECT COUNT(*) FROM songs) AS songs,
       (SELECT COUNT(*) FROM artists) AS artists,
       ROUND(100.0 * SUM(CASE WHEN p.level = 'paid' THEN 1 ELSE 0 END)
             / NULLIF(COUNT(*), 0), 2) AS paid_pct,
       MIN(p.start_time) AS first_play,
       MAX(p.start_time) AS last_play
FROM songplays p
WHERE {_PLAYS}""",
        dated=True,
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
        limited=True,
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
        limited=True,
    ),
)
QUERIES_BY_NAME = {q.name: q for q in QUERIES}
DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class Parameters:
    """The values bound into a named query; each query takes the ones it names."""

    limit: int = DEFAULT_LIMIT
    since: dt.date | None = None
    until: dt.date | None = None
    grain: str = "day"

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            choices = f"{', '.join(GRAINS[:-1])} or {GRAINS[-1]}"
            raise ConfigError(f"grain must be {choices}, got {self.grain!r}")
        if self.since and self.until and self.since > self.until:
            raise ConfigError(f"since {self.since} is after until {self.until}")

    @property
    def days(self) -> dict[str, dt.date | None]:
        return {"since": self.since, "until": self.until}

    def bound(self, query: Query) -> dict[str, object] | None:
        values = {"limit": self.limit, "since": self.since, "until": self.until}
        return {name: values.get(name, self.grain) for name in query.parameters} or None


def get_query(name: str) -> Query:
    if name not in QUERIES_BY_NAME:
        raise ConfigError(unknown_name_message("query", name, tuple(QUERIES_BY_NAME)))
    return QUERIES_BY_NAME[name]


def run_query(backend: Backend, name: str, parameters: Parameters | None = None) -> Result:
    """Answer the named query with the ``parameters`` it takes (default: limit 10, all days)."""
    query = get_query(name)
    return backend.query(query.sql, (parameters or Parameters()).bound(query))

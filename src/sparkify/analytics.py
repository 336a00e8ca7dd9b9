"""The analytical questions, each a named query over the star schema.

``sparkify query NAME`` and the HTML report both read from this catalogue, so they cannot
disagree. The SQL is portable across DuckDB, PostgreSQL and Redshift.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.backends import Backend, Result
from sparkify.config import unknown_name_message
from sparkify.errors import ConfigError


@dataclass(frozen=True)
class Query:
    name: str
    question: str
    sql: str
    limited: bool = False  # takes :limit


_WEEKDAY_NAME = """CASE t.weekday WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday'
    WHEN 2 THEN 'Tuesday' WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday'
    WHEN 5 THEN 'Friday' ELSE 'Saturday' END"""

QUERIES: tuple[Query, ...] = (
    Query(
        "top_songs",
        "Which songs are played most (plays matched to the catalogue)?",
        """SELECT s.title, a.name AS artist, COUNT(*) AS plays
FROM songplays p
JOIN songs s ON s.song_id = p.song_id
LEFT JOIN artists a ON a.artist_id = p.artist_id
GROUP BY s.title, a.name
ORDER BY plays DESC, s.title, a.name
LIMIT :limit""",
        limited=True,
    ),
    Query(
        "top_artists",
        "Which artists are played most (plays matched to the catalogue)?",
        """SELECT a.name AS artist, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN artists a ON a.artist_id = p.artist_id
GROUP BY a.name
ORDER BY plays DESC, a.name
LIMIT :limit""",
        limited=True,
    ),
    Query(
        "plays_by_hour",
        "At what hour of the day (UTC) do people listen?",
        """SELECT t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
GROUP BY t.hour
ORDER BY t.hour""",
    ),
    Query(
        "free_vs_paid",
        "How many plays come from free and from paid users?",
        """SELECT p.level, COUNT(*) AS plays, COUNT(DISTINCT p.user_id) AS users,
       ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM songplays), 2) AS share_pct
FROM songplays p
GROUP BY p.level
ORDER BY p.level""",
    ),
    Query(
        "most_active_users",
        "Who listens most?",
        """SELECT u.user_id, u.first_name, u.last_name, u.level, COUNT(*) AS plays,
       COUNT(DISTINCT p.session_id) AS sessions
FROM songplays p JOIN users u ON u.user_id = p.user_id
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT :limit""",
        limited=True,
    ),
    Query(
        "busiest_weekdays",
        "Which days of the week have the most plays?",
        f"""SELECT t.weekday, {_WEEKDAY_NAME} AS day_name, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
GROUP BY t.weekday
ORDER BY plays DESC, t.weekday""",
    ),
    Query(
        "plays_per_day",
        "How many plays, listeners and paid plays are there each day?",
        """SELECT CAST(p.start_time AS DATE) AS day, COUNT(*) AS plays,
       COUNT(DISTINCT p.user_id) AS listeners,
       SUM(CASE WHEN p.level = 'paid' THEN 1 ELSE 0 END) AS paid_plays,
       SUM(CASE WHEN p.level = 'free' THEN 1 ELSE 0 END) AS free_plays
FROM songplays p
GROUP BY CAST(p.start_time AS DATE)
ORDER BY day""",
    ),
    Query(
        "weekday_hour",
        "How do plays spread over weekday and hour (the weekly rhythm)?",
        """SELECT t.weekday, t.hour, COUNT(*) AS plays
FROM songplays p JOIN time t ON t.start_time = p.start_time
GROUP BY t.weekday, t.hour
ORDER BY t.weekday, t.hour""",
    ),
    Query(
        "song_match_rate",
        "What share of plays matched a song in the catalogue, and how big is the catalogue?",
        """SELECT COUNT(*) AS plays,
       SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END) AS matched_plays,
       ROUND(100.0 * SUM(CASE WHEN p.song_id IS NOT NULL THEN 1 ELSE 0 END)
             / NULLIF(COUNT(*), 0), 2) AS matched_pct,
       (SELECT COUNT(*) FROM songs) AS catalogue_songs,
       (SELECT COUNT(DISTINCT e.song_key || '|' || e.artist_key)
        FROM staging_events e WHERE e.page = 'NextSong') AS distinct_songs_played
FROM songplays p""",
    ),
    Query(
        "level_changes",
        "How many users upgraded (free -> paid) or downgraded each day?",
        """SELECT CAST(l.valid_from AS DATE) AS day,
       SUM(CASE WHEN l.level = 'paid' THEN 1 ELSE 0 END) AS upgrades,
       SUM(CASE WHEN l.level = 'free' THEN 1 ELSE 0 END) AS downgrades
FROM user_levels l
WHERE EXISTS (SELECT 1 FROM user_levels earlier
              WHERE earlier.user_id = l.user_id AND earlier.valid_to = l.valid_from)
GROUP BY CAST(l.valid_from AS DATE)
ORDER BY day""",
    ),
    Query(
        "session_lengths",
        "How many songs do listeners play per session?",
        """SELECT songs_in_session, COUNT(*) AS sessions
FROM (SELECT session_id, COUNT(*) AS songs_in_session
      FROM songplays GROUP BY session_id) s
GROUP BY songs_in_session
ORDER BY songs_in_session""",
    ),
    Query(
        "summary",
        "Headline figures: plays, listeners, songs, artists, paid share and date range.",
        """SELECT (SELECT COUNT(*) FROM songplays) AS plays,
       (SELECT COUNT(DISTINCT user_id) FROM songplays) AS listeners,
       (SELECT COUNT(*) FROM users) AS users,
       (SELECT COUNT(*) FROM songs) AS songs,
       (SELECT COUNT(*) FROM artists) AS artists,
       (SELECT ROUND(100.0 * SUM(CASE WHEN level = 'paid' THEN 1 ELSE 0 END)
               / NULLIF(COUNT(*), 0), 2) FROM songplays) AS paid_pct,
       (SELECT MIN(start_time) FROM songplays) AS first_play,
       (SELECT MAX(start_time) FROM songplays) AS last_play""",
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


def get_query(name: str) -> Query:
    if name not in QUERIES_BY_NAME:
        raise ConfigError(unknown_name_message("query", name, tuple(QUERIES_BY_NAME)))
    return QUERIES_BY_NAME[name]


def run_query(backend: Backend, name: str, limit: int = DEFAULT_LIMIT) -> Result:
    query = get_query(name)
    return backend.query(query.sql, {"limit": limit} if query.limited else None)

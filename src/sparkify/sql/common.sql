-- Shared SQL for every backend. A dialect file (duckdb.sql, postgres.sql, redshift.sql)
-- overrides a statement by defining one with the same name. Parameters are written :name
-- and bound by the backend, never pasted into the text. The tables are declared in
-- sparkify/tables.py (their DDL is served as create_<table>); the run plan that says when
-- each statement runs is sparkify/plan.py.

------------------------------------------------------------------------------------------
-- The ledger and the run record (sparkify.plan lists when each statement runs).
------------------------------------------------------------------------------------------

-- name: existing_tables
SELECT table_name FROM information_schema.tables;

-- name: added_columns
-- A warehouse made by an older version lacks the columns added since (plan.ADDED_COLUMNS:
-- add_etl_runs_unknown_fields, add_*_events).
SELECT table_name, column_name FROM information_schema.columns
WHERE table_name IN ('etl_runs', 'user_agents', 'locations')
  AND table_schema = current_schema();

-- name: add_etl_runs_unknown_fields
ALTER TABLE etl_runs ADD COLUMN unknown_fields VARCHAR(1000);

-- name: add_user_agents_events
-- In one transaction with the column, its values: every event counted once, from the
-- whole of user_events (once per warehouse); a text no event has goes.
ALTER TABLE user_agents ADD COLUMN events BIGINT;
UPDATE user_agents SET events = c.events
FROM (
    SELECT user_agent, COUNT(*) AS events FROM user_events
    WHERE user_agent IS NOT NULL GROUP BY user_agent
) c
WHERE c.user_agent = user_agents.user_agent;
DELETE FROM user_agents WHERE events IS NULL;

-- name: add_locations_events
ALTER TABLE locations ADD COLUMN events BIGINT;
UPDATE locations SET events = c.events
FROM (
    SELECT location, COUNT(*) AS events FROM user_events
    WHERE location IS NOT NULL GROUP BY location
) c
WHERE c.location = locations.location;
DELETE FROM locations WHERE events IS NULL;

-- name: next_run_id
SELECT COALESCE(MAX(run_id), 0) + 1 FROM etl_runs;

-- name: read_ledger
SELECT url, file_id, size, version, fingerprint, kind,
       first_run_id, last_run_id, lines_read, rows_staged, rows_rejected
FROM etl_files;

-- name: update_file_versions
-- Known files whose change token moved but whose content did not: one UPDATE for all of
-- them, from the rows of file_versions (on Redshift, one statement per file would be
-- written on every node of the DISTSTYLE ALL ledger).
UPDATE etl_files SET version = v.version FROM file_versions v WHERE etl_files.url = v.url;
DROP TABLE file_versions;

-- name: read_first_runs
-- The run that first loaded each file this run reloads; its ledger row is replaced next.
SELECT file_id, first_run_id FROM etl_files WHERE file_id IN (SELECT file_id FROM run_files);

-- name: delete_ledger_rows
DELETE FROM etl_files WHERE file_id IN (SELECT file_id FROM run_files);

-- name: table_counts
SELECT 'songplays', COUNT(*) FROM songplays
UNION ALL SELECT 'users', COUNT(*) FROM users
UNION ALL SELECT 'songs', COUNT(*) FROM songs
UNION ALL SELECT 'artists', COUNT(*) FROM artists
UNION ALL SELECT 'time', COUNT(*) FROM time
UNION ALL SELECT 'user_levels', COUNT(*) FROM user_levels
UNION ALL SELECT 'user_events', COUNT(*) FROM user_events
UNION ALL SELECT 'sessions', COUNT(*) FROM sessions
UNION ALL SELECT 'subscription_changes', COUNT(*) FROM subscription_changes
UNION ALL SELECT 'song_feedback', COUNT(*) FROM song_feedback
UNION ALL SELECT 'user_agents', COUNT(*) FROM user_agents
UNION ALL SELECT 'locations', COUNT(*) FROM locations;

-- name: list_rejects
-- `sparkify rejects`: quarantined records, of one run when :run_id is not NULL; those of
-- loaded files and those kept from failed runs.
SELECT run_id, file, line_no, reason, "raw"
FROM (
    SELECT r.run_id, f.url AS file, r.line_no, r.reason, r."raw"
    FROM etl_rejects r JOIN etl_files f ON f.file_id = r.file_id
    UNION ALL
    SELECT run_id, url, line_no, reason, "raw" FROM etl_failed_rejects
) AS rejects
WHERE CAST(:run_id AS INTEGER) IS NULL OR run_id = :run_id
ORDER BY run_id, file, line_no
LIMIT :limit;

------------------------------------------------------------------------------------------
-- One run. The pipeline fills run_files with the files this run (re)loads, snapshots what
-- their old rows touched, replaces their staging rows, then rebuilds exactly the affected
-- keys of every star table from the whole staging area. Each star row is a function of
-- staging alone, so split loads, reruns and backfills in any order give the same tables.
--
-- When every staged event comes from this run's files (a first load, a full refresh), every
-- play and user is affected: the pipeline then leaves out the lines that end with
-- "-- affected keys only" (schema.AFFECTED_KEYS_ONLY), and the snapshot of the events.
-- Leaving them out, rather than binding a flag, keeps each IN (SELECT ...) below a
-- semi-join for the planner (under an OR it is not one).
--
-- Otherwise every read of staging_events, songplays and time is also limited to a range
-- of bound values that the run's keys give (:low_file/:high_file, the run's file ids;
-- :low_session/:high_session and :low_play/:high_play, the affected plays'; :from_time,
-- the earliest event the run adds or removes; :low_time/:high_time, the start times the
-- affected plays had and have). The key filter decides what is rebuilt; the range only
-- lets Redshift's zone maps (PostgreSQL: BRIN indexes; DuckDB: its row groups' min/max)
-- skip the blocks of the history, so a run's cost follows its new data.
------------------------------------------------------------------------------------------



-- name: drop_run_tables
DROP TABLE IF EXISTS run_files;
DROP TABLE IF EXISTS user_changes;
DROP TABLE IF EXISTS affected_plays;
DROP TABLE IF EXISTS affected_users;
DROP TABLE IF EXISTS affected_songs;
DROP TABLE IF EXISTS affected_artists;
DROP TABLE IF EXISTS affected_titles;
DROP TABLE IF EXISTS affected_sessions;
DROP TABLE IF EXISTS affected_times;
DROP TABLE IF EXISTS affected_agents;
DROP TABLE IF EXISTS affected_locations;
DROP TABLE IF EXISTS file_order;

-- name: snapshot_affected_events
-- Both snapshots run twice: before the old staging rows of run_files are deleted and after
-- the new ones are staged, so keys that disappeared from a changed file are rebuilt too.
INSERT INTO affected_plays
SELECT e.session_id * 1000000 + e.item_in_session
FROM staging_events e JOIN run_files r ON r.file_id = e.file_id
WHERE e.page = 'NextSong' AND e.file_id BETWEEN :low_file AND :high_file;
INSERT INTO affected_users
SELECT e.user_id, MIN(e.start_time)
FROM staging_events e JOIN run_files r ON r.file_id = e.file_id
WHERE e.user_id IS NOT NULL AND e.file_id BETWEEN :low_file AND :high_file
GROUP BY e.user_id;
INSERT INTO affected_sessions
SELECT DISTINCT e.session_id
FROM staging_events e JOIN run_files r ON r.file_id = e.file_id
WHERE e.file_id BETWEEN :low_file AND :high_file;

-- name: snapshot_affected_songs
INSERT INTO affected_songs
SELECT DISTINCT s.song_id FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;
INSERT INTO affected_artists
SELECT DISTINCT s.artist_id FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;
INSERT INTO affected_titles
SELECT DISTINCT s.title_key, s.artist_key
FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;

-- name: count_other_staged_events
-- After the run's files' old rows are gone: is any event staged from another file? (0 or 1)
SELECT COUNT(*) FROM (SELECT 1 FROM staging_events LIMIT 1) AS any_row;

-- name: count_user_events
-- Is any user event built? (0 or 1: none in a warehouse loaded by a version without the
-- event model, whose staged events affect_every_session then brings in)
SELECT COUNT(*) FROM (SELECT 1 FROM user_events LIMIT 1) AS any_row;

-- name: affect_every_session
INSERT INTO affected_sessions SELECT DISTINCT session_id FROM staging_events;

-- name: delete_staged_rows
DELETE FROM staging_events
WHERE file_id IN (SELECT file_id FROM run_files) AND file_id BETWEEN :low_file AND :high_file;
DELETE FROM staging_songs WHERE file_id IN (SELECT file_id FROM run_files);
DELETE FROM etl_rejects WHERE file_id IN (SELECT file_id FROM run_files);

-- name: affect_late_songs
-- Plays of a song whose catalogue entry arrived or changed in this run are re-matched (the
-- plays of this run's own files are affected already), and the feedback on them in their
-- sessions (song_feedback names the song played). They may be of any time: the one read
-- of staging_events no range limits, in runs that load song files only.
CREATE TEMPORARY TABLE late_plays AS
SELECT e.session_id, e.item_in_session
FROM staging_events e
JOIN affected_titles t ON t.title_key = e.song_key AND t.artist_key = e.artist_key
WHERE e.page = 'NextSong'
  AND NOT EXISTS (SELECT 1 FROM run_files r WHERE r.file_id = e.file_id);
INSERT INTO affected_plays
SELECT session_id * 1000000 + item_in_session FROM late_plays;
INSERT INTO affected_sessions
SELECT DISTINCT session_id FROM late_plays;
DROP TABLE late_plays;

-- name: rank_files
-- When two copies of a record tie, the one from the file whose URL sorts last wins. The
-- transforms sort by this number rather than by the URL text, which keeps their sorts narrow.
CREATE TEMPORARY TABLE file_order AS
SELECT file_id, ROW_NUMBER() OVER (ORDER BY url) AS file_rank FROM etl_files;

-- name: analyze_staging
-- Planner statistics for the rows just staged, before the snapshots and transforms join
-- them: nothing to do on DuckDB, which keeps its statistics up to date itself.

-- name: analyze_run_tables
-- Planner statistics for the run's temporary tables: nothing to do on DuckDB.

-- name: affected_bounds
-- The ranges of the affected plays' keys and of the affected sessions (those of every
-- affected play among them), and the earliest time of an event the run adds or removes.
SELECT (SELECT MIN(songplay_id) FROM affected_plays), (SELECT MAX(songplay_id) FROM affected_plays),
       MIN(session_id), MAX(session_id), (SELECT MIN(start_time) FROM affected_users)
FROM affected_sessions;

-- name: snapshot_play_times
-- Runs twice, around upsert_songplays: the start times the affected plays had, then have.
INSERT INTO affected_times
SELECT start_time FROM songplays
WHERE songplay_id IN (SELECT songplay_id FROM affected_plays)
  AND songplay_id BETWEEN :low_play AND :high_play;

-- name: time_bounds
SELECT MIN(start_time), MAX(start_time) FROM affected_times;

-- name: upsert_songplays
-- For each affected natural key: the latest copy of the event, and the catalogue entry with
-- the same title and artist name (match keys: trimmed, case-folded) whose duration is closest
-- to the played length, then the lowest song_id. No match: the play is kept, song unknown.
DELETE FROM songplays
WHERE songplay_id IN (SELECT songplay_id FROM affected_plays)  -- affected keys only
  AND songplay_id BETWEEN :low_play AND :high_play  -- affected keys only
;
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
                       session_id, item_in_session, location, user_agent)
SELECT songplay_id, start_time, user_id, level, song_id, artist_id,
       session_id, item_in_session, location, user_agent
FROM (
    SELECT p.songplay_id, p.start_time, p.user_id, p.level, s.song_id, s.artist_id,
           p.session_id, p.item_in_session, p.location, p.user_agent,
           ROW_NUMBER() OVER (
               PARTITION BY p.songplay_id
               ORDER BY ABS(s.duration - p.length) ASC NULLS LAST, s.song_id, s.artist_id
           ) AS rank
    FROM (
        SELECT e.songplay_id, e.start_time, e.user_id, e.level, e.session_id,
               e.item_in_session, e.location, e.user_agent, e.length, e.song_key,
               e.artist_key,
               ROW_NUMBER() OVER (
                   PARTITION BY e.songplay_id  -- one BIGINT sorts faster than its two parts
                   ORDER BY e.ts DESC, f.file_rank DESC, e.line_no DESC) AS pick
        FROM (
            SELECT session_id * 1000000 + item_in_session AS songplay_id, start_time, user_id,
                   level, session_id, item_in_session, location, user_agent, length,
                   song_key, artist_key, ts, file_id, line_no
            FROM staging_events
            WHERE page = 'NextSong'
              AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
        ) e
        JOIN file_order f ON f.file_id = e.file_id
        WHERE e.songplay_id IN (SELECT songplay_id FROM affected_plays)  -- affected keys only
    ) p
    LEFT JOIN staging_songs s ON s.title_key = p.song_key AND s.artist_key = p.artist_key
    WHERE p.pick = 1
) ranked
WHERE rank = 1;

-- name: collect_user_changes
-- One pass over the affected users' events, in time order (exact copies of an event in
-- order of file, then line), keeps what users and user_levels need: each user's latest
-- event, and every event whose level differs from the user's previous known level. Events
-- without a level are ranked apart, so they neither start nor break a stretch of a level.
-- Only the events from :from_time on are read: the level before it is that of the user's
-- stretch in effect then (user_levels, as the events before :from_time left it), and the
-- latest event is among them, as every affected user has an event since :from_time (a run
-- that removes events reads whole histories: :from_time is then the earliest time there is).
CREATE TEMPORARY TABLE user_changes AS
SELECT *
FROM (
    SELECT user_id, first_name, last_name, gender, level, start_time, ts, session_id,
           item_in_session, file_rank, line_no,
           next_ts IS NULL AS last_of_kind,
           level IS NOT NULL AND (previous_level IS NULL OR previous_level <> level)
               AS level_changed
    FROM (
        SELECT e.user_id, e.first_name, e.last_name, e.gender, e.level, e.start_time, e.ts,
               e.session_id, e.item_in_session, f.file_rank, e.line_no,
               COALESCE(LAG(e.level) OVER (
                   PARTITION BY e.user_id, e.level IS NULL
                   ORDER BY e.ts, e.session_id, e.item_in_session, f.file_rank, e.line_no
               ), b.level) AS previous_level,
               LEAD(e.ts) OVER (
                   PARTITION BY e.user_id, e.level IS NULL
                   ORDER BY e.ts, e.session_id, e.item_in_session, f.file_rank, e.line_no
               ) AS next_ts
        FROM staging_events e
        JOIN file_order f ON f.file_id = e.file_id
        LEFT JOIN user_levels b
               ON b.user_id = e.user_id AND b.valid_from < :from_time
              AND (b.valid_to IS NULL OR b.valid_to >= :from_time)
        WHERE e.user_id IS NOT NULL AND e.start_time >= :from_time
          AND e.user_id IN (SELECT user_id FROM affected_users)  -- affected keys only
    ) ranked
) marked
WHERE last_of_kind OR level_changed;

-- name: upsert_users
-- Attributes and level come from each user's latest event.
DELETE FROM users
WHERE user_id IN (SELECT user_id FROM affected_users)  -- affected keys only
;
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT user_id, first_name, last_name, gender, level,
           ROW_NUMBER() OVER (
               PARTITION BY user_id
               ORDER BY ts DESC, session_id DESC, item_in_session DESC,
                        file_rank DESC, line_no DESC) AS pick
    FROM user_changes
    WHERE last_of_kind
) latest
WHERE pick = 1;

-- name: upsert_user_levels
-- Type-2 history: one row per stretch of time a user spent on one level. The stretches
-- from :from_time on are rebuilt; the one in effect before it now ends where the first
-- rebuilt one starts (a run that adds events and takes none away leaves at least one
-- stretch after it if there was one).
DELETE FROM user_levels
WHERE valid_from >= :from_time
  AND user_id IN (SELECT user_id FROM affected_users)  -- affected keys only
;
INSERT INTO user_levels (user_id, level, valid_from, valid_to)
SELECT user_id, level, start_time,
       LEAD(start_time) OVER (PARTITION BY user_id ORDER BY start_time)
FROM user_changes
WHERE level_changed;
UPDATE user_levels SET valid_to = rebuilt.valid_from
FROM (
    SELECT user_id, MIN(start_time) AS valid_from FROM user_changes
    WHERE level_changed GROUP BY user_id
) rebuilt
WHERE rebuilt.user_id = user_levels.user_id AND user_levels.valid_from < :from_time
  AND (user_levels.valid_to IS NULL OR user_levels.valid_to >= :from_time);

-- name: upsert_songs
DELETE FROM songs WHERE song_id IN (SELECT song_id FROM affected_songs);
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (
    SELECT s.*, ROW_NUMBER() OVER (
               PARTITION BY s.song_id ORDER BY f.file_rank DESC, s.line_no DESC) AS pick
    FROM staging_songs s JOIN file_order f ON f.file_id = s.file_id
    WHERE s.song_id IN (SELECT song_id FROM affected_songs)
) latest
WHERE pick = 1;

-- name: upsert_artists
-- When records disagree, prefer a known location, then known coordinates, then the last file.
DELETE FROM artists WHERE artist_id IN (SELECT artist_id FROM affected_artists);
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (
    SELECT s.*, ROW_NUMBER() OVER (
               PARTITION BY s.artist_id
               ORDER BY CASE WHEN s.artist_location IS NULL OR TRIM(s.artist_location) = ''
                             THEN 1 ELSE 0 END,
                        CASE WHEN s.artist_latitude IS NULL THEN 1 ELSE 0 END,
                        f.file_rank DESC, s.line_no DESC) AS pick
    FROM staging_songs s JOIN file_order f ON f.file_id = s.file_id
    WHERE s.artist_id IN (SELECT artist_id FROM affected_artists)
) best
WHERE pick = 1;

-- name: analyze_songplays
-- Planner statistics for the songplays just written, before refresh_time reads them:
-- nothing to do on DuckDB.

-- name: refresh_time
-- Times the affected plays had and no play has any more go; the times of this run's plays
-- are added, in key order (appending to the primary key's index is cheaper than inserting
-- all over it). Times of unaffected plays are there from the runs that wrote those plays
-- (a time table edited by hand is not repaired; `sparkify check` reports it, and
-- --full-refresh rebuilds it).
DELETE FROM time
WHERE NOT EXISTS (
    SELECT 1 FROM songplays p
    WHERE p.start_time = time.start_time
      AND p.start_time BETWEEN :low_time AND :high_time  -- affected keys only
)
  AND start_time BETWEEN :low_time AND :high_time  -- affected keys only
  AND start_time IN (SELECT start_time FROM affected_times)  -- affected keys only
;
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(DATE_PART('hour', start_time) AS INTEGER),
       CAST(DATE_PART('day', start_time) AS INTEGER),
       CAST(DATE_PART('week', start_time) AS INTEGER),
       CAST(DATE_PART('month', start_time) AS INTEGER),
       CAST(DATE_PART('year', start_time) AS INTEGER),
       CAST(DATE_PART('dow', start_time) AS INTEGER)
FROM (
    SELECT DISTINCT start_time FROM songplays
    WHERE songplay_id IN (SELECT songplay_id FROM affected_plays)  -- affected keys only
      AND songplay_id BETWEEN :low_play AND :high_play  -- affected keys only
) p
WHERE NOT EXISTS (
    SELECT 1 FROM time t
    WHERE t.start_time = p.start_time
      AND t.start_time BETWEEN :low_time AND :high_time  -- affected keys only
)
ORDER BY start_time;

------------------------------------------------------------------------------------------
-- Every event and what it tells (docs/model.md). Their affected keys are sessions: the
-- sessions of this run's files' events (before and after a change) and of the plays whose
-- song arrived late. user_events is rebuilt from staging; the others from user_events (and
-- songplays), so each reads the deduplicated events once.
------------------------------------------------------------------------------------------

-- name: upsert_user_events
-- Every event of the affected sessions, the latest copy of each winning as for songplays.
-- The user agents and locations of the events it replaces are counted out first
-- (refresh_user_agents, refresh_locations).
INSERT INTO affected_agents (user_agent, events)
SELECT user_agent, -COUNT(*) FROM user_events
WHERE user_agent IS NOT NULL
  AND session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
GROUP BY user_agent;
INSERT INTO affected_locations (location, events)
SELECT location, -COUNT(*) FROM user_events
WHERE location IS NOT NULL
  AND session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
GROUP BY location;
DELETE FROM user_events
WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
;
INSERT INTO user_events (event_id, start_time, user_id, session_id, item_in_session, page,
                         level, auth, method, status, location, user_agent)
SELECT event_id, start_time, user_id, session_id, item_in_session, page,
       level, auth, method, status, location, user_agent
FROM (
    SELECT e.session_id * 1000000 + e.item_in_session AS event_id, e.start_time, e.user_id,
           e.session_id, e.item_in_session, e.page, e.level, e.auth, e.method, e.status,
           e.location, e.user_agent,
           ROW_NUMBER() OVER (
               PARTITION BY e.session_id * 1000000 + e.item_in_session
               ORDER BY e.ts DESC, f.file_rank DESC, e.line_no DESC) AS pick
    FROM staging_events e JOIN file_order f ON f.file_id = e.file_id
    WHERE e.session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
      AND e.session_id BETWEEN :low_session AND :high_session  -- affected keys only
) latest
WHERE pick = 1;

-- name: analyze_user_events
-- Planner statistics for the events just written, before the next steps read them:
-- nothing to do on DuckDB.

-- name: upsert_sessions
-- One row per session: its span, its counts, and the level, location and user agent of
-- its last event that has one (events ordered by time, then by item_in_session): the event
-- where the count of values seen from the session's end reaches 1. One sort serves the
-- three counts.
DELETE FROM sessions
WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
;
INSERT INTO sessions (session_id, user_id, start_time, end_time, events, plays, level,
                      location, user_agent)
SELECT session_id, MAX(user_id), MIN(start_time), MAX(start_time), COUNT(*),
       SUM(CASE WHEN page = 'NextSong' THEN 1 ELSE 0 END),
       MAX(CASE WHEN levels_seen = 1 THEN level END),
       MAX(CASE WHEN locations_seen = 1 THEN location END),
       MAX(CASE WHEN agents_seen = 1 THEN user_agent END)
FROM (
    SELECT session_id, user_id, start_time, page, level, location, user_agent,
           COUNT(level) OVER (
               PARTITION BY session_id ORDER BY start_time DESC, item_in_session DESC
               ROWS UNBOUNDED PRECEDING) AS levels_seen,
           COUNT(location) OVER (
               PARTITION BY session_id ORDER BY start_time DESC, item_in_session DESC
               ROWS UNBOUNDED PRECEDING) AS locations_seen,
           COUNT(user_agent) OVER (
               PARTITION BY session_id ORDER BY start_time DESC, item_in_session DESC
               ROWS UNBOUNDED PRECEDING) AS agents_seen
    FROM user_events
    WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
      AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
) ranked
GROUP BY session_id;

-- name: upsert_subscription_changes
DELETE FROM subscription_changes
WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
;
INSERT INTO subscription_changes (event_id, change_time, user_id, session_id, kind,
                                  from_level, to_level)
SELECT event_id, start_time, user_id, session_id,
       CASE page WHEN 'Submit Upgrade' THEN 'upgrade'
                 WHEN 'Submit Downgrade' THEN 'downgrade'
                 ELSE 'cancellation' END,
       level,
       CASE page WHEN 'Submit Upgrade' THEN 'paid' WHEN 'Submit Downgrade' THEN 'free' END
FROM user_events
WHERE page IN ('Submit Upgrade', 'Submit Downgrade', 'Cancellation Confirmation')
  AND session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
;

-- name: upsert_song_feedback
-- A thumb rates the song of the latest play before it in its session (by item_in_session).
DELETE FROM song_feedback
WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
;
INSERT INTO song_feedback (event_id, feedback_time, user_id, session_id, rating, songplay_id,
                           song_id, artist_id)
SELECT t.event_id, t.start_time, t.user_id, t.session_id,
       CASE t.page WHEN 'Thumbs Up' THEN 1 ELSE -1 END,
       p.songplay_id, p.song_id, p.artist_id
FROM (
    SELECT event_id, start_time, user_id, session_id, page,
           MAX(CASE WHEN page = 'NextSong' THEN item_in_session END) OVER (
               PARTITION BY session_id ORDER BY item_in_session
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS played_item
    FROM user_events
    WHERE session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
      AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
) t
LEFT JOIN songplays p ON p.songplay_id = t.session_id * 1000000 + t.played_item
WHERE t.page IN ('Thumbs Up', 'Thumbs Down');

-- name: refresh_user_agents
-- One row per user agent text of user_events, parsed by the first matching pattern (the
-- rules and their limits: docs/model.md), with the number of events that have it. Only the
-- texts of the affected sessions' events change: their counts move by the events the run
-- wrote less those it replaced (upsert_user_events); a text whose count reaches 0 goes, a
-- new one is added. So no run reads the events of other sessions.
INSERT INTO affected_agents (user_agent, events)
SELECT user_agent, COUNT(*) FROM user_events
WHERE user_agent IS NOT NULL
  AND session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
GROUP BY user_agent;
UPDATE user_agents SET events = user_agents.events + c.events
FROM (SELECT user_agent, SUM(events) AS events FROM affected_agents GROUP BY user_agent) c
WHERE c.user_agent = user_agents.user_agent;
DELETE FROM user_agents
WHERE events = 0 AND user_agent IN (SELECT user_agent FROM affected_agents);
INSERT INTO user_agents (user_agent, browser, os, device, events)
SELECT user_agent,
       CASE WHEN user_agent LIKE '%Edge/%' OR user_agent LIKE '%Edg/%' THEN 'Edge'
            WHEN user_agent LIKE '%OPR/%' OR user_agent LIKE '%Opera%' THEN 'Opera'
            WHEN user_agent LIKE '%Firefox/%' THEN 'Firefox'
            WHEN user_agent LIKE '%MSIE %' OR user_agent LIKE '%Trident/%'
                THEN 'Internet Explorer'
            WHEN user_agent LIKE '%Chromium/%' THEN 'Chromium'
            WHEN user_agent LIKE '%Chrome/%' OR user_agent LIKE '%CriOS/%' THEN 'Chrome'
            WHEN user_agent LIKE '%Safari/%' THEN 'Safari'
            ELSE 'Other' END,
       CASE WHEN user_agent LIKE '%Windows Phone%' THEN 'Windows Phone'
            WHEN user_agent LIKE '%Windows%' THEN 'Windows'
            WHEN user_agent LIKE '%iPhone%' OR user_agent LIKE '%iPad%'
                 OR user_agent LIKE '%iPod%' THEN 'iOS'
            WHEN user_agent LIKE '%Android%' THEN 'Android'
            WHEN user_agent LIKE '%CrOS%' THEN 'Chrome OS'
            WHEN user_agent LIKE '%Macintosh%' OR user_agent LIKE '%Mac OS X%' THEN 'Mac OS X'
            WHEN user_agent LIKE '%Linux%' OR user_agent LIKE '%X11%' THEN 'Linux'
            ELSE 'Other' END,
       CASE WHEN user_agent LIKE '%iPad%' OR user_agent LIKE '%Tablet%'
                 OR (user_agent LIKE '%Android%' AND user_agent NOT LIKE '%Mobile%')
                THEN 'tablet'
            WHEN user_agent LIKE '%iPhone%' OR user_agent LIKE '%iPod%'
                 OR user_agent LIKE '%Mobile%' OR user_agent LIKE '%Android%'
                 OR user_agent LIKE '%Windows Phone%' THEN 'mobile'
            WHEN user_agent LIKE '%Windows%' OR user_agent LIKE '%Macintosh%'
                 OR user_agent LIKE '%X11%' OR user_agent LIKE '%Linux%'
                 OR user_agent LIKE '%CrOS%' THEN 'desktop'
            ELSE 'other' END,
       events
FROM (SELECT user_agent, SUM(events) AS events FROM affected_agents GROUP BY user_agent) e
WHERE events > 0 AND NOT EXISTS (SELECT 1 FROM user_agents a WHERE a.user_agent = e.user_agent)
ORDER BY user_agent;

-- name: refresh_locations
-- One row per location text of user_events: "Metro-Area-Names, ST-ST" split at the last
-- ", " (metro_area before it, states after it), the city is the metro area up to its first
-- "-", the state the first of the states. Counting ", " by what REPLACE takes out, and
-- SPLIT_PART, SUBSTRING and LENGTH (characters), are the same in every dialect. The
-- counts change as for refresh_user_agents.
INSERT INTO affected_locations (location, events)
SELECT location, COUNT(*) FROM user_events
WHERE location IS NOT NULL
  AND session_id IN (SELECT session_id FROM affected_sessions)  -- affected keys only
  AND session_id BETWEEN :low_session AND :high_session  -- affected keys only
GROUP BY location;
UPDATE locations SET events = locations.events + c.events
FROM (SELECT location, SUM(events) AS events FROM affected_locations GROUP BY location) c
WHERE c.location = locations.location;
DELETE FROM locations
WHERE events = 0 AND location IN (SELECT location FROM affected_locations);
INSERT INTO locations (location, metro_area, city, state, states, events)
SELECT location, metro_area, NULLIF(SPLIT_PART(metro_area, '-', 1), ''),
       NULLIF(SPLIT_PART(states, '-', 1), ''), NULLIF(states, ''), events
FROM (
    SELECT location, states, events,
           CASE WHEN states IS NULL THEN location
                ELSE SUBSTRING(location, 1, LENGTH(location) - LENGTH(states) - 2) END
               AS metro_area
    FROM (
        SELECT location, events,
               CASE WHEN separators > 0
                    THEN SPLIT_PART(location, ', ', separators + 1) END AS states
        FROM (
            SELECT location, events,
                   LENGTH(location) - LENGTH(REPLACE(location, ', ', ',')) AS separators
            FROM (
                SELECT location, SUM(events) AS events FROM affected_locations
                GROUP BY location
            ) seen
            WHERE events > 0
              AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.location = seen.location)
        ) counted
    ) split
) parts
ORDER BY location;

-- name: clear_warehouse
-- --full-refresh: forget everything loaded; DELETE, not TRUNCATE, so it stays in the run's
-- transaction on every backend.
DELETE FROM user_events;
DELETE FROM sessions;
DELETE FROM subscription_changes;
DELETE FROM song_feedback;
DELETE FROM user_agents;
DELETE FROM locations;
DELETE FROM songplays;
DELETE FROM users;
DELETE FROM user_levels;
DELETE FROM songs;
DELETE FROM artists;
DELETE FROM time;
DELETE FROM staging_events;
DELETE FROM staging_songs;
DELETE FROM etl_rejects;
DELETE FROM etl_files;

-- name: drop_tables
DROP TABLE IF EXISTS user_events;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS subscription_changes;
DROP TABLE IF EXISTS song_feedback;
DROP TABLE IF EXISTS user_agents;
DROP TABLE IF EXISTS locations;
DROP TABLE IF EXISTS songplays;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS user_levels;
DROP TABLE IF EXISTS songs;
DROP TABLE IF EXISTS artists;
DROP TABLE IF EXISTS time;
DROP TABLE IF EXISTS staging_events;
DROP TABLE IF EXISTS staging_songs;
DROP TABLE IF EXISTS etl_rejects;
DROP TABLE IF EXISTS etl_failed_rejects;
DROP TABLE IF EXISTS etl_files;
DROP TABLE IF EXISTS etl_runs;

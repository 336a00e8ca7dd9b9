-- Amazon Redshift overrides of postgres.sql and common.sql: only what differs. The design
-- behind the keys and widths is in docs/redshift.md.
--
-- 1. Tables carry their distribution and sort keys. Widths are explicit: a bare VARCHAR is
--    256 bytes in Redshift and widths count bytes, not characters; a bare NUMERIC has scale 0,
--    so measures stay DOUBLE PRECISION. Short codes and ids get 256 bytes, free text 1024.
--    Primary keys and UNIQUE are informational only (Redshift does not enforce them).
-- 2. No COLLATE "C": Redshift already compares text byte by byte, as DuckDB does.
-- 3. Match keys (case-folded titles and artist names) get twice their source's width:
--    case folding can lengthen text (ß -> ss).
-- 4. A run holds LOCK etl_runs until it commits (see lock_run).
-- 5. "raw" is a reserved word in Redshift and is quoted.

-- name: create_etl_runs
CREATE TABLE IF NOT EXISTS etl_runs (
    run_id          INTEGER NOT NULL PRIMARY KEY,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    status          VARCHAR(16) NOT NULL,
    files_new       INTEGER,
    files_changed   INTEGER,
    files_skipped   INTEGER,
    lines_read      BIGINT,
    rows_staged     BIGINT,
    rows_rejected   BIGINT,
    songplays_rows  BIGINT,
    users_rows      BIGINT,
    songs_rows      BIGINT,
    artists_rows    BIGINT,
    time_rows       BIGINT,
    message         VARCHAR(1000)
)
DISTSTYLE ALL
SORTKEY(run_id);

-- name: create_etl_files
CREATE TABLE IF NOT EXISTS etl_files (
    file_id         INTEGER NOT NULL PRIMARY KEY,
    url             VARCHAR(1024) NOT NULL UNIQUE,
    kind            VARCHAR(8) NOT NULL,
    size            BIGINT NOT NULL,
    version         VARCHAR(128) NOT NULL,
    fingerprint     VARCHAR(128) NOT NULL,
    first_run_id    INTEGER NOT NULL,
    last_run_id     INTEGER NOT NULL,
    lines_read      BIGINT NOT NULL,
    rows_staged     BIGINT NOT NULL,
    rows_rejected   BIGINT NOT NULL
)
DISTSTYLE ALL
SORTKEY(file_id);

-- name: create_etl_rejects
CREATE TABLE IF NOT EXISTS etl_rejects (
    run_id          INTEGER NOT NULL,
    file_id         INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    reason          VARCHAR(1000) NOT NULL,
    "raw"           VARCHAR(65535)
)
DISTSTYLE EVEN
SORTKEY(run_id);

-- name: create_staging_events
CREATE TABLE IF NOT EXISTS staging_events (
    file_id         INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    artist          VARCHAR(1024),
    auth            VARCHAR(256),
    first_name      VARCHAR(256),
    gender          VARCHAR(256),
    item_in_session INTEGER NOT NULL,
    last_name       VARCHAR(256),
    length          DOUBLE PRECISION,
    level           VARCHAR(256),
    location        VARCHAR(1024),
    method          VARCHAR(256),
    page            VARCHAR(256) NOT NULL,
    registration    BIGINT,
    session_id      BIGINT NOT NULL,
    song            VARCHAR(1024),
    status          INTEGER,
    ts              BIGINT NOT NULL,
    user_agent      VARCHAR(1024),
    user_id         BIGINT,
    song_key        VARCHAR(2048),
    artist_key      VARCHAR(2048),
    start_time      TIMESTAMP NOT NULL
)
DISTSTYLE KEY
DISTKEY(session_id)
SORTKEY(file_id);

-- name: create_staging_songs
CREATE TABLE IF NOT EXISTS staging_songs (
    file_id          INTEGER NOT NULL,
    line_no          INTEGER NOT NULL,
    num_songs        INTEGER,
    artist_id        VARCHAR(256) NOT NULL,
    artist_latitude  DOUBLE PRECISION,
    artist_longitude DOUBLE PRECISION,
    artist_location  VARCHAR(1024),
    artist_name      VARCHAR(1024),
    song_id          VARCHAR(256) NOT NULL,
    title            VARCHAR(1024),
    duration         DOUBLE PRECISION,
    year             INTEGER,
    title_key        VARCHAR(2048),
    artist_key       VARCHAR(2048)
)
DISTSTYLE ALL
SORTKEY(file_id);

-- name: create_songplays
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id     BIGINT NOT NULL PRIMARY KEY,
    start_time      TIMESTAMP NOT NULL,
    user_id         BIGINT,
    level           VARCHAR(256),
    song_id         VARCHAR(256),
    artist_id       VARCHAR(256),
    session_id      BIGINT NOT NULL,
    item_in_session INTEGER NOT NULL,
    location        VARCHAR(1024),
    user_agent      VARCHAR(1024)
)
DISTSTYLE KEY
DISTKEY(user_id)
SORTKEY(start_time);

-- name: create_users
CREATE TABLE IF NOT EXISTS users (
    user_id         BIGINT NOT NULL PRIMARY KEY,
    first_name      VARCHAR(256),
    last_name       VARCHAR(256),
    gender          VARCHAR(256),
    level           VARCHAR(256)
)
DISTSTYLE KEY
DISTKEY(user_id)
SORTKEY(level);

-- name: create_user_levels
CREATE TABLE IF NOT EXISTS user_levels (
    user_id         BIGINT NOT NULL,
    level           VARCHAR(256) NOT NULL,
    valid_from      TIMESTAMP NOT NULL,
    valid_to        TIMESTAMP,
    PRIMARY KEY (user_id, valid_from)
)
DISTSTYLE KEY
DISTKEY(user_id)
COMPOUND SORTKEY(user_id, valid_from);

-- name: create_songs
CREATE TABLE IF NOT EXISTS songs (
    song_id         VARCHAR(256) NOT NULL PRIMARY KEY,
    title           VARCHAR(1024),
    artist_id       VARCHAR(256) NOT NULL,
    year            INTEGER,
    duration        DOUBLE PRECISION
)
DISTSTYLE ALL
SORTKEY(artist_id);

-- name: create_artists
CREATE TABLE IF NOT EXISTS artists (
    artist_id       VARCHAR(256) NOT NULL PRIMARY KEY,
    name            VARCHAR(1024),
    location        VARCHAR(1024),
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION
)
DISTSTYLE ALL
SORTKEY(artist_id);

-- name: create_time
CREATE TABLE IF NOT EXISTS time (
    start_time      TIMESTAMP NOT NULL PRIMARY KEY,
    hour            INTEGER NOT NULL,
    day             INTEGER NOT NULL,
    week            INTEGER NOT NULL,
    month           INTEGER NOT NULL,
    year            INTEGER NOT NULL,
    weekday         INTEGER NOT NULL
)
DISTSTYLE KEY
DISTKEY(start_time)
SORTKEY(start_time);

-- name: create_affected
CREATE TEMPORARY TABLE affected_plays (songplay_id BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_users (user_id BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_songs (song_id VARCHAR(256) NOT NULL);
CREATE TEMPORARY TABLE affected_artists (artist_id VARCHAR(256) NOT NULL);
CREATE TEMPORARY TABLE affected_titles (title_key VARCHAR(2048), artist_key VARCHAR(2048));

-- name: rank_files
-- A copy on every node, like etl_files (DISTSTYLE ALL), so joining it to the staged rows
-- moves no data between nodes.
CREATE TEMPORARY TABLE file_order DISTSTYLE ALL AS
SELECT file_id, ROW_NUMBER() OVER (ORDER BY url) AS file_rank FROM etl_files;

-- name: analyze_staging
-- PREDICATE COLUMNS: the columns queries filter, join or group on, and the keys (all of them
-- until a query has marked some). Redshift skips the ANALYZE while fewer than
-- analyze_threshold_percent (10%) of a table's rows changed since the last one.
ANALYZE staging_events PREDICATE COLUMNS;
ANALYZE staging_songs PREDICATE COLUMNS;

------------------------------------------------------------------------------------------
-- Redshift-only statements, run by backends/redshift.py.
------------------------------------------------------------------------------------------

-- name: lock_wait
-- Redshift has no lock_timeout: a statement_timeout bounds the LOCK (--wait, at least 5 s),
-- set for the session before the run's transaction and reset once the lock is held.
SELECT set_config('statement_timeout', :timeout, false);

-- name: lock_run
-- One run at a time: held until the run's transaction ends. Readers of etl_runs wait too.
-- The first statement of the transaction: Redshift starts a transaction's snapshot at its
-- first SELECT, CREATE or INSERT, so a LOCK after one of them would protect nothing.
LOCK etl_runs;

-- name: lock_wait_end
RESET statement_timeout;

-- name: copy_count
SELECT pg_last_copy_count();

-- name: has_load_error_detail
-- Whether SYS_LOAD_ERROR_DETAIL is there to read (1) or not (0), as the search path finds it.
-- OID is a reserved word: qualified, as in Redshift's own PG_TABLE_DEF.
SELECT COUNT(*) FROM pg_class c
WHERE c.relname = 'sys_load_error_detail' AND pg_table_is_visible(c.oid);

-- name: load_errors
-- Why a COPY left rows out, for the staged object it read. SYS_LOAD_ERROR_DETAIL covers
-- provisioned clusters, Serverless and concurrency scaling; it keeps no raw value.
SELECT TRIM(file_name) AS file, line_number, TRIM(column_name) AS column_name,
       CAST(NULL AS VARCHAR(1024)) AS value, error_code AS code, TRIM(error_message) AS reason
FROM sys_load_error_detail
WHERE TRIM(file_name) = :url
ORDER BY line_number
LIMIT 5;

-- name: load_errors_stl
-- The same from STL_LOAD_ERRORS, where SYS_LOAD_ERROR_DETAIL is missing (it misses the
-- loads of Serverless and of concurrency scaling).
SELECT TRIM(filename) AS file, line_number, TRIM(colname) AS column_name,
       TRIM(raw_field_value) AS value, err_code AS code, TRIM(err_reason) AS reason
FROM stl_load_errors
WHERE TRIM(filename) = :url
ORDER BY line_number
LIMIT 5;

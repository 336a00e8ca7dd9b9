-- The DDL of sql/common.sql before each table was declared once (sparkify/tables.py),
-- kept as it was, and the DDL of the tables added since (issue 18's model), written by hand:
-- tests/test_tables.py holds the generated DDL to the same meaning.

-- name: create_etl_runs
CREATE TABLE IF NOT EXISTS etl_runs (
    run_id          INTEGER PRIMARY KEY,
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
    message         VARCHAR(1000),
    unknown_fields  VARCHAR(1000)
);

-- name: create_etl_files
CREATE TABLE IF NOT EXISTS etl_files (
    file_id         INTEGER PRIMARY KEY,
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
);

-- name: create_etl_rejects
CREATE TABLE IF NOT EXISTS etl_rejects (
    run_id          INTEGER NOT NULL,
    file_id         INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    reason          VARCHAR(1000) NOT NULL,
    raw             VARCHAR(65535)
);

-- name: create_etl_failed_rejects
CREATE TABLE IF NOT EXISTS etl_failed_rejects (
    run_id          INTEGER NOT NULL,
    url             VARCHAR(1024) NOT NULL,
    line_no         INTEGER NOT NULL,
    reason          VARCHAR(1000) NOT NULL,
    raw             VARCHAR(65535)
);

-- name: create_staging_events
CREATE TABLE IF NOT EXISTS staging_events (
    file_id         INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    artist          VARCHAR,
    auth            VARCHAR,
    first_name      VARCHAR,
    gender          VARCHAR,
    item_in_session INTEGER NOT NULL,
    last_name       VARCHAR,
    length          DOUBLE PRECISION,
    level           VARCHAR,
    location        VARCHAR,
    method          VARCHAR,
    page            VARCHAR NOT NULL,
    registration    BIGINT,
    session_id      BIGINT NOT NULL,
    song            VARCHAR,
    status          INTEGER,
    ts              BIGINT NOT NULL,
    user_agent      VARCHAR,
    user_id         BIGINT,
    song_key        VARCHAR,
    artist_key      VARCHAR,
    start_time      TIMESTAMP NOT NULL
);

-- name: create_staging_songs
CREATE TABLE IF NOT EXISTS staging_songs (
    file_id          INTEGER NOT NULL,
    line_no          INTEGER NOT NULL,
    num_songs        INTEGER,
    artist_id        VARCHAR NOT NULL,
    artist_latitude  DOUBLE PRECISION,
    artist_longitude DOUBLE PRECISION,
    artist_location  VARCHAR,
    artist_name      VARCHAR,
    song_id          VARCHAR NOT NULL,
    title            VARCHAR,
    duration         DOUBLE PRECISION,
    year             INTEGER,
    title_key        VARCHAR,
    artist_key       VARCHAR
);

-- name: create_songplays
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id     BIGINT PRIMARY KEY,
    start_time      TIMESTAMP NOT NULL,
    user_id         BIGINT,
    level           VARCHAR,
    song_id         VARCHAR,
    artist_id       VARCHAR,
    session_id      BIGINT NOT NULL,
    item_in_session INTEGER NOT NULL,
    location        VARCHAR,
    user_agent      VARCHAR
);

-- name: create_users
CREATE TABLE IF NOT EXISTS users (
    user_id         BIGINT PRIMARY KEY,
    first_name      VARCHAR,
    last_name       VARCHAR,
    gender          VARCHAR,
    level           VARCHAR
);

-- name: create_user_levels
CREATE TABLE IF NOT EXISTS user_levels (
    user_id         BIGINT NOT NULL,
    level           VARCHAR NOT NULL,
    valid_from      TIMESTAMP NOT NULL,
    valid_to        TIMESTAMP,
    PRIMARY KEY (user_id, valid_from)
);

-- name: create_songs
CREATE TABLE IF NOT EXISTS songs (
    song_id         VARCHAR PRIMARY KEY,
    title           VARCHAR,
    artist_id       VARCHAR NOT NULL,
    year            INTEGER,
    duration        DOUBLE PRECISION
);

-- name: create_artists
CREATE TABLE IF NOT EXISTS artists (
    artist_id       VARCHAR PRIMARY KEY,
    name            VARCHAR,
    location        VARCHAR,
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION
);

-- name: create_user_events
CREATE TABLE IF NOT EXISTS user_events (
    event_id        BIGINT PRIMARY KEY,
    start_time      TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    item_in_session INTEGER NOT NULL,
    page            VARCHAR NOT NULL,
    level           VARCHAR,
    auth            VARCHAR,
    method          VARCHAR,
    status          INTEGER,
    location        VARCHAR,
    user_agent      VARCHAR
);

-- name: create_sessions
CREATE TABLE IF NOT EXISTS sessions (
    session_id      BIGINT PRIMARY KEY,
    user_id         BIGINT,
    start_time      TIMESTAMP NOT NULL,
    end_time        TIMESTAMP NOT NULL,
    events          INTEGER NOT NULL,
    plays           INTEGER NOT NULL,
    level           VARCHAR,
    location        VARCHAR,
    user_agent      VARCHAR
);

-- name: create_subscription_changes
CREATE TABLE IF NOT EXISTS subscription_changes (
    event_id        BIGINT PRIMARY KEY,
    change_time     TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    kind            VARCHAR NOT NULL,
    from_level      VARCHAR,
    to_level        VARCHAR
);

-- name: create_song_feedback
CREATE TABLE IF NOT EXISTS song_feedback (
    event_id        BIGINT PRIMARY KEY,
    feedback_time   TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    rating          SMALLINT NOT NULL,
    songplay_id     BIGINT,
    song_id         VARCHAR,
    artist_id       VARCHAR
);

-- name: create_user_agents
CREATE TABLE IF NOT EXISTS user_agents (
    user_agent      VARCHAR PRIMARY KEY,
    browser         VARCHAR,
    os              VARCHAR,
    device          VARCHAR,
    events          BIGINT
);

-- name: create_locations
CREATE TABLE IF NOT EXISTS locations (
    location        VARCHAR PRIMARY KEY,
    metro_area      VARCHAR,
    city            VARCHAR,
    state           VARCHAR,
    states          VARCHAR,
    events          BIGINT
);

-- name: create_time
CREATE TABLE IF NOT EXISTS time (
    start_time      TIMESTAMP PRIMARY KEY,
    hour            INTEGER NOT NULL,
    day             INTEGER NOT NULL,
    week            INTEGER NOT NULL,
    month           INTEGER NOT NULL,
    year            INTEGER NOT NULL,
    weekday         INTEGER NOT NULL
);

-- name: create_run_files
CREATE TEMPORARY TABLE run_files (file_id INTEGER NOT NULL, kind VARCHAR(8) NOT NULL);

-- name: create_affected
CREATE TEMPORARY TABLE affected_plays (songplay_id BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_users (user_id BIGINT NOT NULL, start_time TIMESTAMP NOT NULL);
CREATE TEMPORARY TABLE affected_songs (song_id VARCHAR NOT NULL);
CREATE TEMPORARY TABLE affected_artists (artist_id VARCHAR NOT NULL);
CREATE TEMPORARY TABLE affected_titles (title_key VARCHAR, artist_key VARCHAR);
CREATE TEMPORARY TABLE affected_sessions (session_id BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_times (start_time TIMESTAMP NOT NULL);
CREATE TEMPORARY TABLE affected_agents (user_agent VARCHAR NOT NULL, events BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_locations (location VARCHAR NOT NULL, events BIGINT NOT NULL);

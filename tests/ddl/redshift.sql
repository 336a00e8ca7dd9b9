-- The DDL of sql/redshift.sql before each table was declared once (sparkify/tables.py),
-- kept as it was, and the DDL of the tables added since (issue 18's model), written by hand:
-- tests/test_tables.py holds the generated DDL to the same meaning.

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
    message         VARCHAR(1000),
    unknown_fields  VARCHAR(1000)
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

-- name: create_etl_failed_rejects
CREATE TABLE IF NOT EXISTS etl_failed_rejects (
    run_id          INTEGER NOT NULL,
    url             VARCHAR(1024) NOT NULL,
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
SORTKEY(session_id);

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

-- name: create_user_events
CREATE TABLE IF NOT EXISTS user_events (
    event_id        BIGINT NOT NULL PRIMARY KEY,
    start_time      TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    item_in_session INTEGER NOT NULL,
    page            VARCHAR(256) NOT NULL,
    level           VARCHAR(256),
    auth            VARCHAR(256),
    method          VARCHAR(256),
    status          INTEGER,
    location        VARCHAR(1024),
    user_agent      VARCHAR(1024)
)
DISTSTYLE KEY
DISTKEY(session_id)
SORTKEY(start_time);

-- name: create_sessions
CREATE TABLE IF NOT EXISTS sessions (
    session_id      BIGINT NOT NULL PRIMARY KEY,
    user_id         BIGINT,
    start_time      TIMESTAMP NOT NULL,
    end_time        TIMESTAMP NOT NULL,
    events          INTEGER NOT NULL,
    plays           INTEGER NOT NULL,
    level           VARCHAR(256),
    location        VARCHAR(1024),
    user_agent      VARCHAR(1024)
)
DISTSTYLE KEY
DISTKEY(session_id)
SORTKEY(start_time);

-- name: create_subscription_changes
CREATE TABLE IF NOT EXISTS subscription_changes (
    event_id        BIGINT NOT NULL PRIMARY KEY,
    change_time     TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    kind            VARCHAR(256) NOT NULL,
    from_level      VARCHAR(256),
    to_level        VARCHAR(256)
)
DISTSTYLE ALL
SORTKEY(change_time);

-- name: create_song_feedback
CREATE TABLE IF NOT EXISTS song_feedback (
    event_id        BIGINT NOT NULL PRIMARY KEY,
    feedback_time   TIMESTAMP NOT NULL,
    user_id         BIGINT,
    session_id      BIGINT NOT NULL,
    rating          SMALLINT NOT NULL,
    songplay_id     BIGINT,
    song_id         VARCHAR(256),
    artist_id       VARCHAR(256)
)
DISTSTYLE KEY
DISTKEY(session_id)
SORTKEY(feedback_time);

-- name: create_user_agents
CREATE TABLE IF NOT EXISTS user_agents (
    user_agent      VARCHAR(1024) NOT NULL PRIMARY KEY,
    browser         VARCHAR(256),
    os              VARCHAR(256),
    device          VARCHAR(256),
    events          BIGINT
)
DISTSTYLE ALL
SORTKEY(user_agent);

-- name: create_locations
CREATE TABLE IF NOT EXISTS locations (
    location        VARCHAR(1024) NOT NULL PRIMARY KEY,
    metro_area      VARCHAR(1024),
    city            VARCHAR(1024),
    state           VARCHAR(1024),
    states          VARCHAR(1024),
    events          BIGINT
)
DISTSTYLE ALL
SORTKEY(location);

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
CREATE TEMPORARY TABLE affected_users (user_id BIGINT NOT NULL, start_time TIMESTAMP NOT NULL);
CREATE TEMPORARY TABLE affected_songs (song_id VARCHAR(256) NOT NULL);
CREATE TEMPORARY TABLE affected_artists (artist_id VARCHAR(256) NOT NULL);
CREATE TEMPORARY TABLE affected_titles (title_key VARCHAR(2048), artist_key VARCHAR(2048));
CREATE TEMPORARY TABLE affected_sessions (session_id BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_times (start_time TIMESTAMP NOT NULL);
CREATE TEMPORARY TABLE affected_agents (user_agent VARCHAR(1024) NOT NULL, events BIGINT NOT NULL);
CREATE TEMPORARY TABLE affected_locations (location VARCHAR(1024) NOT NULL, events BIGINT NOT NULL);

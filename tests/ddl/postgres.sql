-- The DDL of sql/postgres.sql before each table was declared once (sparkify/tables.py),
-- kept as it was, and the DDL of the tables added since (issue 18's model), written by hand:
-- tests/test_tables.py holds the generated DDL to the same meaning.

-- name: create_etl_files
CREATE TABLE IF NOT EXISTS etl_files (
    file_id         INTEGER PRIMARY KEY,
    url             VARCHAR(1024) COLLATE "C" NOT NULL UNIQUE,
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
    song_id          VARCHAR COLLATE "C" NOT NULL,
    title            VARCHAR,
    duration         DOUBLE PRECISION,
    year             INTEGER,
    title_key        VARCHAR,
    artist_key       VARCHAR
);

-- name: create_user_agents
CREATE TABLE IF NOT EXISTS user_agents (
    user_agent      VARCHAR COLLATE "C" PRIMARY KEY,
    browser         VARCHAR,
    os              VARCHAR,
    device          VARCHAR,
    events          BIGINT
);

-- name: create_locations
CREATE TABLE IF NOT EXISTS locations (
    location        VARCHAR COLLATE "C" PRIMARY KEY,
    metro_area      VARCHAR,
    city            VARCHAR,
    state           VARCHAR,
    states          VARCHAR,
    events          BIGINT
);

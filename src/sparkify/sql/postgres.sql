-- PostgreSQL overrides of common.sql: only the statements where PostgreSQL behaves
-- differently from DuckDB, the reference semantics. (redshift.sql reads this file next.)
--
-- 1. Sort order of text. The transforms break ties by etl_files.url and staging_songs.song_id;
--    DuckDB compares bytes, PostgreSQL the database collation (en_US ignores punctuation and
--    case at first). COLLATE "C" on those two columns gives DuckDB's order on any server.
-- 2. TRIM. DuckDB's TRIM strips every Unicode space separator (category Zs), PostgreSQL's only
--    U+0020, so titles and artist names are matched on BTRIM(x, <the Zs characters>):
--    U+0020 U+00A0 U+1680 U+2000..U+200A U+202F U+205F U+3000.
--    LOWER agrees with DuckDB for every code point when the database's LC_CTYPE is a UTF-8
--    locale (C.UTF-8, en_US.UTF-8); under LC_CTYPE=C it folds ASCII letters only.

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
    year             INTEGER
);

-- name: snapshot_affected
INSERT INTO affected_plays
SELECT e.session_id * 1000000 + e.item_in_session
FROM staging_events e JOIN run_files r ON r.file_id = e.file_id
WHERE e.page = 'NextSong';
INSERT INTO affected_users
SELECT DISTINCT e.user_id
FROM staging_events e JOIN run_files r ON r.file_id = e.file_id
WHERE e.user_id IS NOT NULL;
INSERT INTO affected_songs
SELECT DISTINCT s.song_id FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;
INSERT INTO affected_artists
SELECT DISTINCT s.artist_id FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;
INSERT INTO affected_titles
SELECT DISTINCT
    LOWER(BTRIM(s.title,
        U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000')),
    LOWER(BTRIM(s.artist_name,
        U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
FROM staging_songs s JOIN run_files r ON r.file_id = s.file_id;
ANALYZE affected_plays;
ANALYZE affected_users;
ANALYZE affected_songs;
ANALYZE affected_artists;
ANALYZE affected_titles;

-- name: affect_late_songs
INSERT INTO affected_plays
SELECT e.session_id * 1000000 + e.item_in_session
FROM staging_events e
JOIN affected_titles t
  ON t.title_key = LOWER(BTRIM(e.song,
         U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
 AND t.artist_key = LOWER(BTRIM(e.artist,
         U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
WHERE e.page = 'NextSong';
ANALYZE affected_plays;

-- name: upsert_songplays
DELETE FROM songplays WHERE songplay_id IN (SELECT songplay_id FROM affected_plays);
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id,
                       session_id, item_in_session, location, user_agent)
SELECT p.songplay_id, p.start_time, p.user_id, p.level, m.song_id, m.artist_id,
       p.session_id, p.item_in_session, p.location, p.user_agent
FROM (
    SELECT e.*, e.session_id * 1000000 + e.item_in_session AS songplay_id,
           ROW_NUMBER() OVER (
               PARTITION BY e.session_id, e.item_in_session
               ORDER BY e.ts DESC, f.url DESC, e.line_no DESC) AS pick
    FROM staging_events e JOIN etl_files f ON f.file_id = e.file_id
    WHERE e.page = 'NextSong'
      AND e.session_id * 1000000 + e.item_in_session IN
          (SELECT songplay_id FROM affected_plays)
) p
LEFT JOIN (
    SELECT c.songplay_id, c.song_id, c.artist_id,
           ROW_NUMBER() OVER (
               PARTITION BY c.songplay_id
               ORDER BY ABS(c.duration - c.length) ASC NULLS LAST, c.song_id) AS rank
    FROM (
        SELECT DISTINCT e.session_id * 1000000 + e.item_in_session AS songplay_id,
               e.length, s.song_id, s.artist_id, s.duration
        FROM staging_events e
        JOIN staging_songs s
          ON LOWER(BTRIM(s.title,
                 U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
           = LOWER(BTRIM(e.song,
                 U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
         AND LOWER(BTRIM(s.artist_name,
                 U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
           = LOWER(BTRIM(e.artist,
                 U&' \00A0\1680\2000\2001\2002\2003\2004\2005\2006\2007\2008\2009\200A\202F\205F\3000'))
        WHERE e.page = 'NextSong'
          AND e.session_id * 1000000 + e.item_in_session IN
              (SELECT songplay_id FROM affected_plays)
    ) c
) m ON m.songplay_id = p.songplay_id AND m.rank = 1
WHERE p.pick = 1;

-- How Redshift loads: the staged files of parsed rows (one COPY of several files per
-- table), and raw S3 files COPYed and checked inside Redshift (backends/redshift_raw.py;
-- the checks are generated from the field tables in backends/redshift_checks.py).
-- docs/redshift.md explains the design.

-- name: count_slices
-- The staged files of a table are a multiple of this: COPY gives each slice its files.
SELECT COUNT(*) FROM stv_slices;

-- name: create_landing
-- One raw file's lines, landed before the run's transaction by a session of its own (or in
-- the run's transaction, when another run dropped it meanwhile). The name (placeholder
-- "raw_landing_<key>") is a hash of the object's ETag and size, so a failed or repeated run
-- finds it again. line_id numbers the loaded lines in the order the slice read them; the
-- lines COPY refused follow, with their line number and reason, in the same transaction.
CREATE TABLE "raw_landing_<key>" (
    line_id BIGINT IDENTITY(1, 1), line VARCHAR(65535), refused_line INTEGER,
    reason VARCHAR(1000)
) DISTSTYLE EVEN;

-- name: raw_copy_errors
-- The lines the COPY of :url refused (wider than 64 KB, invalid UTF-8, a field separator):
-- this session's, in this transaction (SYSDATE is when it began). The SYS view's query ids
-- are not the ones pg_last_copy_id() returns (those are STL_LOAD_ERRORS'). The view lives on
-- the leader node only, so its rows come back to the client to be inserted.
SELECT line_number, error_code, TRIM(error_message)
FROM sys_load_error_detail
WHERE session_id = PG_BACKEND_PID() AND TRIM(file_name) = :url AND start_time >= SYSDATE
ORDER BY line_number;

-- name: has_load_detail
-- Whether SYS_LOAD_DETAIL is there to read (1) or not (0), as the search path finds it.
SELECT COUNT(*) FROM pg_class c
WHERE c.relname = 'sys_load_detail' AND pg_table_is_visible(c.oid);

-- name: raw_copy_ranges
-- In how many scan ranges this session's COPY of :url, in this transaction, read the file:
-- Redshift splits an uncompressed delimited file of 128 MB or more among several slices,
-- and then line_id no longer follows the file's order. SYS_LOAD_DETAIL covers provisioned
-- clusters, Serverless and concurrency scaling; splits_scanned is the file's splits. It has
-- no session: SYS_LOAD_HISTORY (one row per COPY) gives the COPYs of this session. None
-- found (0) means the view did not say.
SELECT GREATEST(COUNT(*), COALESCE(MAX(d.splits_scanned), 0))
FROM sys_load_detail d
JOIN sys_load_history h ON h.query_id = d.query_id
WHERE h.session_id = PG_BACKEND_PID() AND h.start_time >= SYSDATE
  AND TRIM(d.file_name) = :url;

-- name: raw_copy_ranges_stl
-- The same from STL_LOAD_COMMITS, where SYS_LOAD_DETAIL is missing: one row per scan range
-- of the session's last COPY, is_partial 1 when the file was split.
SELECT GREATEST(COUNT(*), 2 * COALESCE(MAX(is_partial), 0))
FROM stl_load_commits
WHERE query = PG_LAST_COPY_ID() AND TRIM(filename) = :url;

-- name: drop_landing
DROP TABLE IF EXISTS "raw_landing_<key>";

-- name: create_raw_tables
-- raw_lines: every landed line of the run with its file and physical line number.
-- raw_refused: the lines COPY refused, with their file and line number.
-- raw_records: the records in the landed lines; checked_*: accepted rows, until staged.
CREATE TEMPORARY TABLE raw_lines (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, line VARCHAR(65535)
);
CREATE TEMPORARY TABLE raw_refused (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, reason VARCHAR(1000) NOT NULL
);
CREATE TEMPORARY TABLE raw_records (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, doc VARCHAR(65535) NOT NULL
);
CREATE TEMPORARY TABLE checked_events (LIKE staging_events);
CREATE TEMPORARY TABLE checked_songs (LIKE staging_songs);
-- JSON keys are mixed case ("itemInSession"): quoted SUPER attributes keep their case.
SET enable_case_sensitive_identifier TO true;

-- name: land_raw_file
-- One landed file's lines with its file_id and physical line numbers. The k-th refused line
-- (line r) comes after r - k loaded lines: numbering the loaded lines and the refused ones in
-- one order (slot, loaded, refused_line) gives every line its place (COPY loads blank lines
-- too, so none is skipped).
INSERT INTO raw_refused (file_id, line_no, reason)
SELECT CAST(:file_id AS INTEGER), refused_line, reason
FROM "raw_landing_<key>" WHERE refused_line IS NOT NULL;
INSERT INTO raw_lines (file_id, line_no, line)
SELECT CAST(:file_id AS INTEGER), CAST(line_no AS INTEGER), line
FROM (
    SELECT ROW_NUMBER() OVER (ORDER BY slot, loaded, refused_line) AS line_no, loaded, line
    FROM (
        SELECT ROW_NUMBER() OVER (ORDER BY line_id) AS slot, 1 AS loaded, 0 AS refused_line,
               line
        FROM "raw_landing_<key>" WHERE refused_line IS NULL
        UNION ALL
        SELECT refused_line - ROW_NUMBER() OVER (ORDER BY refused_line) + 1, 0, refused_line,
               CAST(NULL AS VARCHAR(65535))
        FROM "raw_landing_<key>" WHERE refused_line IS NOT NULL
    ) slots
) numbered
WHERE loaded = 1;

-- name: raw_checked_counts
-- Per file: its records, those accepted, and the lines COPY refused.
SELECT file_id, SUM(records), SUM(accepted), SUM(refused)
FROM (
    SELECT file_id, 1 AS records, CASE WHEN reason IS NULL THEN 1 ELSE 0 END AS accepted,
           0 AS refused
    FROM raw_checked
    UNION ALL
    SELECT file_id, 0, 0, 1 FROM raw_refused
) counted
GROUP BY file_id;

-- name: raw_rejects
-- COPY gives no text for a line it refused (sys_load_error_detail has none).
SELECT file_id, line_no, reason, "raw" FROM raw_checked WHERE reason IS NOT NULL
UNION ALL
SELECT file_id, line_no, reason, CAST(NULL AS VARCHAR(65535)) FROM raw_refused
ORDER BY file_id, line_no
LIMIT :limit;

-- name: clear_raw_tables
DROP TABLE raw_checked;
DROP TABLE raw_parsed;
DELETE FROM raw_records;
DELETE FROM raw_lines;
DELETE FROM raw_refused;

-- name: count_checked_events
SELECT COUNT(*) FROM checked_events;

-- name: count_checked_songs
SELECT COUNT(*) FROM checked_songs;

-- name: stage_checked_events
INSERT INTO staging_events SELECT * FROM checked_events;
DELETE FROM checked_events;

-- name: stage_checked_songs
INSERT INTO staging_songs SELECT * FROM checked_songs;
DELETE FROM checked_songs;

-- name: drop_raw_tables
DROP TABLE IF EXISTS raw_lines;
DROP TABLE IF EXISTS raw_refused;
DROP TABLE IF EXISTS raw_records;
DROP TABLE IF EXISTS checked_events;
DROP TABLE IF EXISTS checked_songs;
SET enable_case_sensitive_identifier TO false;

-- How Redshift loads: the staged files of parsed rows (one COPY of several files per
-- table), and raw S3 files COPYed and checked inside Redshift (backends/redshift_raw.py;
-- the checks are generated from the field tables in backends/redshift_checks.py).
-- docs/redshift.md explains the design.

-- name: count_slices
-- The staged files of a table are a multiple of this: COPY gives each slice its files.
SELECT COUNT(*) FROM stv_slices;

-- name: create_raw_tables
-- raw_file: one COPY's lines, numbered by IDENTITY in the order the slice read them.
-- raw_lines: every landed line with its file and physical line number.
-- raw_refused: the lines COPY refused, with how many loaded lines came before each.
-- raw_records: the records in the landed lines; checked_*: accepted rows, until staged.
CREATE TEMPORARY TABLE raw_file (line_id BIGINT IDENTITY(1, 1), line VARCHAR(65535));
CREATE TEMPORARY TABLE raw_lines (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, line VARCHAR(65535)
);
CREATE TEMPORARY TABLE raw_refused (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, loaded_before INTEGER NOT NULL,
    reason VARCHAR(1000) NOT NULL
);
CREATE TEMPORARY TABLE raw_records (
    file_id INTEGER NOT NULL, line_no INTEGER NOT NULL, doc VARCHAR(65535) NOT NULL
);
CREATE TEMPORARY TABLE checked_events (LIKE staging_events);
CREATE TEMPORARY TABLE checked_songs (LIKE staging_songs);
-- JSON keys are mixed case ("itemInSession"): quoted SUPER attributes keep their case.
SET enable_case_sensitive_identifier TO true;

-- name: raw_copy_errors
-- The lines the COPY of :url refused (wider than 64 KB, invalid UTF-8, a field separator):
-- this session's, in this transaction (SYSDATE is when it began). The SYS view's query ids
-- are not the ones pg_last_copy_id() returns (those are STL_LOAD_ERRORS').
SELECT line_number, error_code, TRIM(error_message)
FROM sys_load_error_detail
WHERE session_id = PG_BACKEND_PID() AND TRIM(file_name) = :url AND start_time >= SYSDATE
ORDER BY line_number;

-- name: land_raw_file
-- The lines of one COPY with their file and physical line number: the n-th loaded line,
-- plus the refused lines before it (COPY loads blank lines too, so none is skipped).
INSERT INTO raw_lines (file_id, line_no, line)
SELECT CAST(:file_id AS INTEGER), r.pos + s.shift, r.line
FROM (SELECT ROW_NUMBER() OVER (ORDER BY line_id) AS pos, line FROM raw_file) r
JOIN (
    SELECT p.pos, COUNT(e.line_no) AS shift
    FROM (SELECT ROW_NUMBER() OVER (ORDER BY line_id) AS pos FROM raw_file) p
    LEFT JOIN raw_refused e
      ON e.file_id = CAST(:file_id AS INTEGER) AND e.loaded_before < p.pos
    GROUP BY p.pos
) s ON s.pos = r.pos;
DELETE FROM raw_file;

-- name: raw_checked_counts
SELECT file_id, COUNT(*), SUM(CASE WHEN reason IS NULL THEN 1 ELSE 0 END)
FROM raw_checked
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
DROP TABLE IF EXISTS raw_file;
DROP TABLE IF EXISTS raw_lines;
DROP TABLE IF EXISTS raw_refused;
DROP TABLE IF EXISTS raw_records;
DROP TABLE IF EXISTS checked_events;
DROP TABLE IF EXISTS checked_songs;
SET enable_case_sensitive_identifier TO false;

-- Amazon Redshift overrides of postgres.sql and common.sql: only what differs. The design
-- behind the keys and widths is in docs/redshift.md.
--
-- 1. The tables' distribution and sort keys, explicit VARCHAR widths (in bytes), quoted
--    reserved words ("raw") and no COLLATE "C" (Redshift compares text byte by byte, as
--    DuckDB does) come from the tables' declarations: sparkify/tables.py, DIALECTS.
-- 2. A run holds LOCK etl_runs until it commits (see lock_run).

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

-- name: analyze_songplays
-- Redshift keeps the statistics its COPY and INSERTs leave (and analyzes automatically);
-- nothing to do here.

-- name: physical_design
-- Each table's sort key, as (table, column) rows in key order: a table made before its
-- declared key (staging_events was sorted by file_id) gets ALTER SORTKEY
-- (tables.design_statements). pg_table_def lists the tables of the search path, which is
-- the warehouse's schema, and any user may read it (svv_table_info: superusers only).
SELECT tablename, "column" FROM pg_table_def
WHERE schemaname = current_schema() AND sortkey > 0
ORDER BY tablename, sortkey;

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

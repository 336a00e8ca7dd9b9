-- DuckDB overrides of common.sql: only what differs.

------------------------------------------------------------------------------------------
-- One run at a time: the database file lock admits a single writing process (see
-- backends/duckdb.py connect), so a run sends no statement for it.
------------------------------------------------------------------------------------------

-- name: lock_wait

-- name: lock_run

-- name: lock_wait_end

-- PostgreSQL overrides of common.sql: only the statements where PostgreSQL behaves
-- differently from DuckDB, the reference semantics. (redshift.sql reads this file next.)
--
-- 1. Sort order of text. The transforms break ties by the rank of etl_files.url and by
--    staging_songs.song_id; DuckDB compares bytes, PostgreSQL the database collation (en_US
--    ignores punctuation and case at first). COLLATE "C" on those two columns gives
--    DuckDB's order on any server (declared in sparkify/tables.py: byte_order).
-- 2. Statistics. Temporary tables are never analyzed automatically, and autovacuum analyzes
--    the staging tables only later, if at all (a rolled-back load can leave "0 rows" behind);
--    without statistics the planner picks nested loops over millions of staged rows.
-- 3. One run at a time: LOCK etl_runs, the first statement of the run's transaction. A LOCK
--    starts no snapshot, so a run that waited for it reads what the previous run committed
--    even at REPEATABLE READ (a SELECT of an advisory lock would start the snapshot before
--    the wait). EXCLUSIVE mode lets readers (check, query, report) through.
-- Titles and artist names are matched on keys computed while parsing (records.match_key),
-- so no collation or TRIM difference reaches the matching.

-- name: analyze_staging
-- Only the columns the snapshots and transforms filter, join or group on: statistics of the
-- other columns of a large staging table cost two thirds of the ANALYZE and change no plan.
-- Then the BRIN indexes (tables.py: zone_maps) summarize the page ranges written since the
-- last run (the new staged rows, the last run's songplays and user events): a range not yet
-- summarized is read by every scan of the index.
ANALYZE staging_events (file_id, page, user_id, session_id, item_in_session, level,
                        start_time);
ANALYZE staging_songs;
SELECT brin_summarize_new_values(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname IN ('staging_events_zone_maps', 'songplays_zone_maps', 'user_events_zone_maps')
  AND n.nspname = current_schema();

-- name: analyze_run_tables
ANALYZE run_files;
ANALYZE affected_plays;
ANALYZE affected_users;
ANALYZE affected_songs;
ANALYZE affected_artists;
ANALYZE affected_titles;
ANALYZE affected_sessions;
ANALYZE file_order;

-- name: analyze_user_events
ANALYZE user_events (session_id, page, user_agent, location);

-- name: analyze_songplays
-- refresh_time's anti-joins read songplays just rewritten: with statistics that still say
-- what a rolled-back load left (0 rows), or none (a rebuild's new table), the planner took
-- nested loops that ran for many minutes. The columns it joins and filters on.
ANALYZE songplays (songplay_id, start_time);

-- name: physical_design
-- The zone-map indexes the warehouse's tables have, as (table, index) rows: a table made
-- before its index was declared gets it (tables.design_statements).
SELECT t.relname, x.relname
FROM pg_index i
JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND x.relname = t.relname || '_zone_maps';

-- name: existing_tables
SELECT table_name FROM information_schema.tables WHERE table_schema = :schema;

-- name: enforced_keys
-- The columns of the valid primary keys of the schema's tables (quality.run_checks: a key
-- PostgreSQL enforces needs no scan for duplicates or NULLs).
SELECT c.relname, a.attname
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_index i ON i.indexrelid = k.conindid AND i.indisvalid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(k.conkey)
WHERE k.contype = 'p' AND k.convalidated;

-- name: lock_wait
-- Before the run's transaction: how long its LOCK may wait (--wait), in milliseconds.
SELECT set_config('lock_timeout', :timeout, false);

-- name: lock_run
LOCK TABLE etl_runs IN EXCLUSIVE MODE;

-- name: lock_wait_end
-- Once the lock is held (and after a rollback, which undoes the first RESET).
RESET lock_timeout;

-- name: can_build
-- Whether a first load or --full-refresh may build the tables anew on several connections
-- and swap them in (sparkify.rebuild): that creates a schema, and drops and replaces the
-- tables :tables, which this role must own. Anything the new tables would not have keeps
-- the run in place, in its one transaction: a view over a table (it would have to be
-- dropped), grants, triggers, row security, or indexes sparkify does not make (only its
-- primary keys, unique keys and zone-map indexes, tables.py, are rebuilt).
SELECT has_database_privilege(current_database(), 'CREATE')
   AND NOT EXISTS (
       SELECT 1 FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
       WHERE c.relname = ANY(:tables) AND c.relkind IN ('r', 'p')
         AND (NOT pg_has_role(c.relowner, 'USAGE')
              OR c.relacl IS NOT NULL OR c.relhastriggers OR c.relrowsecurity
              OR EXISTS (SELECT 1 FROM pg_depend d
                         WHERE d.refobjid = c.oid
                           AND d.classid = CAST('pg_rewrite' AS regclass))
              OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                         WHERE i.indrelid = c.oid AND NOT i.indisunique
                           AND x.relname <> c.relname || '_zone_maps'))
   );

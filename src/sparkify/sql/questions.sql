-- The questions an analyst asks of every event (issue #18): activity, subscriptions,
-- retention, feedback, devices and sessions. One block per named query in
-- sparkify/analytics.py, which expands two shorthands before anything is sent:
--   PERIOD(x)    x's day, week (from Monday) or month as a DATE, chosen by :grain
--   IN_RANGE(x)  x within the inclusive day range :since .. :before - 1 day (NULL: open)
-- Portable SQL (DuckDB, PostgreSQL, Redshift); docs/queries.md says what each answers.
-- Durations are whole seconds, FLOOR(EXTRACT(EPOCH ...)) apart (EXTRACT returns whole
-- seconds on Redshift); averages are taken over FLOAT8 (AVG of an integer truncates on
-- Redshift); a ratio is rounded as DECIMAL(18,6) first, so every backend rounds the same
-- digits.

-- name: active_users
-- Users with at least one logged-in event in the period, and of them those with an event
-- on the paid and on the free level (a user who changed level counts under both).
SELECT period,
       COUNT(DISTINCT user_id) AS active_users,
       COUNT(DISTINCT CASE WHEN level = 'paid' THEN user_id END) AS paid_users,
       COUNT(DISTINCT CASE WHEN level = 'free' THEN user_id END) AS free_users
FROM (
    SELECT PERIOD(e.start_time) AS period, e.user_id, e.level
    FROM user_events e
    WHERE e.user_id IS NOT NULL AND IN_RANGE(e.start_time)
) AS activity
GROUP BY period
ORDER BY period;

-- name: new_vs_returning
-- The period's active users split by the period of their first event ever (all data,
-- whatever the range): new when it is this period, returning when it is earlier.
SELECT a.period,
       SUM(CASE WHEN f.first_period = a.period THEN 1 ELSE 0 END) AS new_users,
       SUM(CASE WHEN f.first_period < a.period THEN 1 ELSE 0 END) AS returning_users
FROM (
    SELECT DISTINCT PERIOD(e.start_time) AS period, e.user_id
    FROM user_events e
    WHERE e.user_id IS NOT NULL AND IN_RANGE(e.start_time)
) AS a
JOIN (
    SELECT firsts.user_id, PERIOD(firsts.first_time) AS first_period
    FROM (
        SELECT user_id, MIN(start_time) AS first_time
        FROM user_events
        WHERE user_id IS NOT NULL
        GROUP BY user_id
    ) AS firsts
) AS f ON f.user_id = a.user_id
GROUP BY a.period
ORDER BY a.period;

-- name: retention
-- Cohorts: the users whose first event ever falls in the range, by the week (from Monday)
-- of that event. For each cohort and each later week with activity in the range: how many
-- of its users had a logged-in event that week (week 0 is the cohort's own week).
WITH firsts AS (
    SELECT user_id, MIN(start_time) AS first_time
    FROM user_events
    WHERE user_id IS NOT NULL
    GROUP BY user_id
), members AS (
    SELECT user_id, CAST(DATE_TRUNC('week', first_time) AS DATE) AS cohort_week
    FROM firsts f
    WHERE IN_RANGE(f.first_time)
), sizes AS (
    SELECT cohort_week, COUNT(*) AS cohort_size
    FROM members
    GROUP BY cohort_week
), activity AS (
    SELECT DISTINCT e.user_id, CAST(DATE_TRUNC('week', e.start_time) AS DATE) AS active_week
    FROM user_events e
    WHERE e.user_id IS NOT NULL AND IN_RANGE(e.start_time)
), weeks AS (
    SELECT m.cohort_week, CAST((a.active_week - m.cohort_week) / 7 AS INTEGER) AS week
    FROM members m
    JOIN activity a ON a.user_id = m.user_id
)
SELECT w.cohort_week, s.cohort_size, w.week, COUNT(*) AS users,
       ROUND(CAST(1.0 * COUNT(*) / s.cohort_size AS DECIMAL(18, 6)), 4) AS retained
FROM weeks w
JOIN sizes s ON s.cohort_week = w.cohort_week
GROUP BY w.cohort_week, s.cohort_size, w.week
ORDER BY w.cohort_week, w.week;

-- name: conversion
-- The free -> paid funnel in the range; each step's users are among the previous step's:
-- users with an event on the free level; who opened the Upgrade page while free; who then
-- submitted an upgrade; who then had an event on the paid level. Days to upgrade: from a
-- user's first free event to their first upgrade (both in the range), on that step's row.
WITH free AS (
    SELECT e.user_id, MIN(e.start_time) AS first_free
    FROM user_events e
    WHERE e.level = 'free' AND e.user_id IS NOT NULL AND IN_RANGE(e.start_time)
    GROUP BY e.user_id
), visited AS (
    SELECT DISTINCT e.user_id
    FROM user_events e
    JOIN free f ON f.user_id = e.user_id
    WHERE e.page = 'Upgrade' AND e.level = 'free' AND IN_RANGE(e.start_time)
), submitted AS (
    SELECT c.user_id, MIN(c.change_time) AS upgraded_at
    FROM subscription_changes c
    JOIN visited v ON v.user_id = c.user_id
    WHERE c.kind = 'upgrade' AND IN_RANGE(c.change_time)
    GROUP BY c.user_id
), paid AS (
    SELECT DISTINCT e.user_id
    FROM user_events e
    JOIN submitted s ON s.user_id = e.user_id
    WHERE e.level = 'paid' AND e.start_time >= s.upgraded_at AND IN_RANGE(e.start_time)
), upgrade_days AS (
    SELECT CAST(FLOOR(EXTRACT(EPOCH FROM s.upgraded_at))
                - FLOOR(EXTRACT(EPOCH FROM f.first_free)) AS FLOAT8) / 86400 AS days
    FROM submitted s
    JOIN free f ON f.user_id = s.user_id
), steps AS (
    SELECT 1 AS step_no, 'saw_free' AS step, COUNT(*) AS users FROM free
    UNION ALL
    SELECT 2, 'visited_upgrade', COUNT(*) FROM visited
    UNION ALL
    SELECT 3, 'submitted_upgrade', COUNT(*) FROM submitted
    UNION ALL
    SELECT 4, 'paid', COUNT(*) FROM paid
), timing AS (
    SELECT 3 AS step_no,
           ROUND(CAST(PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY days)
                      AS DECIMAL(18, 6)), 2) AS median_days,
           ROUND(CAST(AVG(days) AS DECIMAL(18, 6)), 2) AS mean_days
    FROM upgrade_days
)
SELECT s.step, s.users,
       ROUND(CAST(1.0 * s.users / NULLIF((SELECT COUNT(*) FROM free), 0)
                  AS DECIMAL(18, 6)), 4) AS share,
       t.median_days, t.mean_days
FROM steps s
LEFT JOIN timing t ON t.step_no = s.step_no
ORDER BY s.step_no;

-- name: churn
-- Subscription changes per period: cancellations (Cancellation Confirmation), downgrades
-- (Submit Downgrade) and upgrades (Submit Upgrade), as events.
SELECT period,
       SUM(CASE WHEN kind = 'cancellation' THEN 1 ELSE 0 END) AS cancellations,
       SUM(CASE WHEN kind = 'downgrade' THEN 1 ELSE 0 END) AS downgrades,
       SUM(CASE WHEN kind = 'upgrade' THEN 1 ELSE 0 END) AS upgrades
FROM (
    SELECT PERIOD(c.change_time) AS period, c.kind
    FROM subscription_changes c
    WHERE IN_RANGE(c.change_time)
) AS changes
GROUP BY period
ORDER BY period;

-- name: song_feedback
-- Thumbs up and down given to the songs played just before them, for the plays matched to
-- the catalogue; most liked first.
SELECT s.title, a.name AS artist,
       SUM(CASE WHEN f.rating > 0 THEN 1 ELSE 0 END) AS thumbs_up,
       SUM(CASE WHEN f.rating < 0 THEN 1 ELSE 0 END) AS thumbs_down,
       SUM(f.rating) AS net
FROM song_feedback f
JOIN songs s ON s.song_id = f.song_id
LEFT JOIN artists a ON a.artist_id = f.artist_id
WHERE IN_RANGE(f.feedback_time)
GROUP BY s.title, a.name
ORDER BY net DESC, thumbs_up DESC, s.title, a.name NULLS LAST
LIMIT :limit;

-- name: devices
-- Sessions that started in the range, by the browser, OS and device of their user agent.
SELECT ua.browser, ua.os, ua.device,
       COUNT(DISTINCT s.user_id) AS users,
       COUNT(*) AS sessions,
       SUM(s.plays) AS plays
FROM sessions s
LEFT JOIN user_agents ua ON ua.user_agent = s.user_agent
WHERE IN_RANGE(s.start_time)
GROUP BY ua.browser, ua.os, ua.device
ORDER BY users DESC, sessions DESC, plays DESC,
         ua.browser NULLS LAST, ua.os NULLS LAST, ua.device NULLS LAST;

-- name: session_stats
-- Sessions by the period they started in: how many, how long (first to last event) and
-- how many plays, on average and at the median.
SELECT period,
       COUNT(*) AS sessions,
       ROUND(CAST(AVG(seconds) / 60 AS DECIMAL(18, 6)), 2) AS mean_minutes,
       ROUND(CAST(PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY seconds) / 60
                  AS DECIMAL(18, 6)), 2) AS median_minutes,
       ROUND(CAST(AVG(plays) AS DECIMAL(18, 6)), 2) AS mean_plays
FROM (
    SELECT PERIOD(s.start_time) AS period,
           CAST(FLOOR(EXTRACT(EPOCH FROM s.end_time))
                - FLOOR(EXTRACT(EPOCH FROM s.start_time)) AS FLOAT8) AS seconds,
           CAST(s.plays AS FLOAT8) AS plays
    FROM sessions s
    WHERE IN_RANGE(s.start_time)
) AS lengths
GROUP BY period
ORDER BY period;

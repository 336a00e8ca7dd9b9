"""Load each day's Sparkify event logs, check the warehouse, refresh the report.

One run per day of data: the run's data interval ([day, next day)) becomes the load's
since/until, so a run reads only its own day's event file (plus new or changed song files).
A retried or re-triggered run is safe: a load commits everything or nothing, and loading
the same files again changes nothing. Too many rejected records (exit code 3) or failed
quality checks (exit code 4) fail the task at once, with the reason in the task log;
other errors are retried.

Where the data and the warehouse are comes from the workers' environment, as for the
`sparkify` command: SPARKIFY_S3_SONG_DATA, SPARKIFY_S3_LOG_DATA (folders or s3:// URLs),
SPARKIFY_WAREHOUSE_PATH (DuckDB) or SPARKIFY_WAREHOUSE_BACKEND/DSN/SCHEMA (PostgreSQL,
Redshift), or a dwh.cfg passed as config=... Trigger with config {"max_errors": N} to
allow more rejected records for one run, {"report": PATH} to write the report elsewhere.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from sparkify.airflow import SparkifyCheckOperator, SparkifyEtlOperator, SparkifyReportOperator

with DAG(
    dag_id="sparkify_daily",
    # A data interval of one whole day, run when the day is over (Airflow 3's "@daily" is
    # a zero-length trigger timetable; this one gives [midnight, next midnight)).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2018, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs take the warehouse's run lock one at a time anyway
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    params={
        "max_errors": Param(1000, type="integer", minimum=0),
        "report": Param("report.html", type="string"),
    },
    tags=["sparkify"],
) as dag:
    load = SparkifyEtlOperator(
        task_id="load_day",
        use_data_interval=True,
        max_errors="{{ params.max_errors }}",
        checks=False,  # the next task is the quality gate
        wait=600,  # queue behind a run that holds the warehouse, up to 10 minutes
    )
    check = SparkifyCheckOperator(task_id="check")
    report = SparkifyReportOperator(task_id="report", path="{{ params.report }}")
    load >> check >> report

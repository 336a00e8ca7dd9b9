"""Airflow operators over the Python API (Airflow 3: ``pip install apache-airflow``).

- :class:`SparkifyEtlOperator` loads new and changed files (``use_data_interval=True``: only
  the event files of the run's data interval, the end excluded), then runs the checks.
- :class:`SparkifyCheckOperator` runs the data-quality checks.
- :class:`SparkifyReportOperator` writes the HTML report.

Failures keep the command line's exit codes. A runtime error (exit code 1: the warehouse
unreachable, another run holding it) raises ``AirflowException``, so the task's retries
apply; that is safe because a run commits everything or nothing and a rerun changes nothing.
A usage or configuration error (2), too many rejected records (3) or failed quality checks
(4) would fail again the same way: ``AirflowFailException`` fails the task at once. Either
way the reason is in the task log. Every value the task returns goes to XCom as plain JSON.

Only this module imports Airflow; ``import sparkify`` never does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import sparkify
from sparkify.errors import EXIT_RUNTIME, SparkifyError

_CONNECTION_FIELDS = ("config", "backend", "database", "dsn", "schema")


class _SparkifyOperator(BaseOperator):
    """Where the warehouse is: the arguments of :func:`sparkify.connect` (each templated);
    what is not given comes from ``SPARKIFY_*`` variables and ``dwh.cfg`` as usual."""

    template_fields: Sequence[str] = _CONNECTION_FIELDS
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        config: str | None = None,
        backend: str | None = None,
        database: str | None = None,
        dsn: str | None = None,
        schema: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.backend = backend
        self.database = database
        self.dsn = dsn
        self.schema = schema

    def _run(self, what: str, work: Callable[[sparkify.Warehouse], Any]) -> Any:
        try:
            warehouse = sparkify.connect(
                self.config,
                backend=self.backend,
                database=self.database,
                dsn=self.dsn,
                schema=self.schema,
            )
            with warehouse:
                return work(warehouse)
        except SparkifyError as error:
            self.log.error("sparkify %s failed (exit code %d): %s", what, error.exit_code, error)
            if error.exit_code == EXIT_RUNTIME:
                raise AirflowException(f"{error} (exit code {error.exit_code})") from error
            raise AirflowFailException(f"{error} (exit code {error.exit_code})") from error


class SparkifyEtlOperator(_SparkifyOperator):
    """``sparkify etl`` as a task; returns the run's summary (``RunResult.as_dict()``).

    ``songs``, ``logs``, ``since``, ``until`` and ``max_errors`` are templated.
    ``use_data_interval=True`` sets since/until to the days of the run's data interval
    (``[start, end)``; a zero-length interval gives its one day), so each run of a daily DAG
    loads its own day.
    ``wait``: seconds to wait for another run holding the warehouse before failing.
    """

    template_fields: Sequence[str] = (
        *_CONNECTION_FIELDS,
        "songs",
        "logs",
        "since",
        "until",
        "max_errors",
    )

    def __init__(
        self,
        *,
        songs: str | None = None,
        logs: str | None = None,
        since: str | dt.date | None = None,
        until: str | dt.date | None = None,
        use_data_interval: bool = False,
        full_refresh: bool = False,
        max_errors: int | str = 1000,
        checks: bool = True,
        wait: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.songs = songs
        self.logs = logs
        self.since = since
        self.until = until
        self.use_data_interval = use_data_interval
        self.full_refresh = full_refresh
        self.max_errors = max_errors
        self.checks = checks
        self.wait = wait

    def execute(self, context: Any) -> dict[str, Any]:
        since, until = self.since, self.until
        if self.use_data_interval:
            since, until = days_of_interval(
                context["data_interval_start"], context["data_interval_end"]
            )
            self.log.info("data interval: event files from %s to %s", since, until)

        def load(warehouse: sparkify.Warehouse) -> dict[str, Any]:
            result = warehouse.etl(
                self.songs,
                self.logs,
                full_refresh=self.full_refresh,
                since=since,
                until=until,
                max_errors=int(self.max_errors),
                checks=self.checks,
                wait=self.wait,
            )
            return result.as_dict()

        return self._run("etl", load)


class SparkifyCheckOperator(_SparkifyOperator):
    """``sparkify check`` as a task; fails (no retry) when an error-severity check fails.
    Returns every check's outcome."""

    def execute(self, context: Any) -> list[dict[str, object]]:
        def check(warehouse: sparkify.Warehouse) -> Any:
            result = warehouse.check()
            self.log.info("%s", result.summary())
            result.raise_on_failure()
            return result.as_list()

        result: list[dict[str, object]] = self._run("check", check)
        return result


class SparkifyReportOperator(_SparkifyOperator):
    """``sparkify report`` as a task: writes the HTML report to ``path`` (templated);
    returns the path."""

    template_fields: Sequence[str] = (*_CONNECTION_FIELDS, "path")

    def __init__(self, *, path: str = "report.html", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def execute(self, context: Any) -> str:
        def report(warehouse: sparkify.Warehouse) -> Any:
            return str(warehouse.report(self.path).path)

        path: str = self._run("report", report)
        return path


def days_of_interval(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last day of ``[start, end)``; a zero-length interval is its one day."""
    last = max(start, end - dt.timedelta(microseconds=1))
    return start.date(), last.date()

"""The Python API: :func:`connect` gives a :class:`Warehouse`; :func:`generate` writes data.

The ``sparkify`` command is a thin layer over these functions. Every error a user can hit is
a :class:`~sparkify.errors.SparkifyError` whose ``exit_code`` is the command's.

A call opens its own connection and closes it before returning, so a ``Warehouse`` holds no
lock between calls. Inside ``with sparkify.connect(...) as warehouse:`` the calls share one
connection, opened at the first call and closed when the block ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkify import analytics
from sparkify.backends import Backend, open_backend
from sparkify.config import Settings, load_settings, overlapping_inputs
from sparkify.errors import ConfigError, from_os_error
from sparkify.generator import GenerateOptions, GenerateSummary
from sparkify.generator import generate as write_dataset
from sparkify.pipeline import (
    DEFAULT_MAX_ERRORS,
    EtlOptions,
    ensure_tables,
    holding_run_lock,
    require_tables,
    run_etl,
)
from sparkify.progress import ProgressFactory, progress_log
from sparkify.quality import CheckResult, run_checks
from sparkify.results import Rows, RunResult

if TYPE_CHECKING:
    from sparkify.report import Report  # imported when used: it needs the report packages

log = logging.getLogger(__name__)

_QUERY_NAME = re.compile(r"[A-Za-z_]\w*")

PathLike = str | os.PathLike[str]
DateLike = dt.date | str


def connect(
    config: PathLike | None = None,
    *,
    backend: str | None = None,
    database: PathLike | None = None,
    dsn: str | None = None,
    schema: str | None = None,
) -> Warehouse:
    """The warehouse the settings point at: arguments > ``SPARKIFY_*`` variables >
    ``config`` (default ``./dwh.cfg``, optional) > defaults (``./sparkify.duckdb``).

    Nothing connects yet; the settings are checked at once (``ConfigError``, exit code 2).
    """
    settings = resolve_settings(config, backend=backend, database=database, dsn=dsn, schema=schema)
    for warning in settings.warnings:  # a config file that others can read holds a secret
        log.warning("%s", warning)
    return Warehouse(settings)


def resolve_settings(
    config: PathLike | None = None,
    *,
    backend: str | None = None,
    database: PathLike | None = None,
    dsn: str | None = None,
    schema: str | None = None,
) -> Settings:
    """The settings :func:`connect` uses, each with where it came from."""
    overrides = {
        ("WAREHOUSE", "BACKEND"): backend,
        ("WAREHOUSE", "PATH"): None if database is None else os.fspath(database),
        ("WAREHOUSE", "DSN"): dsn,
        ("WAREHOUSE", "SCHEMA"): schema,
    }
    return load_settings(None if config is None else os.fspath(config), overrides)


class Warehouse:
    """A DuckDB file, a PostgreSQL schema or a Redshift schema holding the star schema.

    Reading calls (``check``, ``query``, ``rejects``, ``report``) connect read-only: they
    cannot change the warehouse, and a DuckDB file that does not exist is an error, not
    created. Inside ``with``, the one shared connection can write once a writing call has
    opened it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._backend = open_backend(settings)  # settings checked; never connected itself
        self._shared = 0  # depth of ``with`` blocks: then one connection serves every call
        self._open: Backend | None = None  # the shared connection, inside ``with``

    def __repr__(self) -> str:
        return f"<Warehouse {self.describe()}>"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """Where the data lives, e.g. ``duckdb:sparkify.duckdb`` (never a password)."""
        return self._backend.describe()

    def __enter__(self) -> Warehouse:
        self._shared += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._shared -= 1
        if not self._shared:
            self.close()

    def close(self) -> None:
        """Close the shared connection, if one is open (calls outside ``with`` close theirs)."""
        if self._open is not None:
            self._open.close()
            self._open = None

    @contextmanager
    def session(self, read_only: bool = False, wait_seconds: float = 0.0) -> Iterator[Backend]:
        """A connected :class:`~sparkify.backends.Backend` (the internals, for extensions)."""
        backend = self._open
        if backend is None or (backend.read_only and not read_only):
            self.close()  # a read-only shared connection gives way to a writing one
            backend = open_backend(self.settings, read_only)
            backend.connect(wait_seconds=wait_seconds)
            log.debug("connected to %s%s", self, " (read-only)" if read_only else "")
            if self._shared:
                self._open = backend
        try:
            with from_os_error():
                yield backend
        finally:
            if backend is not self._open:
                backend.close()

    # -- loading --------------------------------------------------------------------------

    def create_tables(self, drop: bool = False, *, wait: float = 0.0) -> list[str]:
        """Create every missing table (``drop=True``: drop and recreate them, losing all
        data, under the run lock, waiting up to ``wait`` seconds for a run); returns the
        tables that exist afterwards."""
        with self.session(wait_seconds=wait) as backend:
            ensure_tables(backend)
            if drop:
                with holding_run_lock(backend):
                    ensure_tables(backend, drop=True)
            tables = sorted(backend.existing_tables())
        log.debug("%s: %d tables in %s", "recreated" if drop else "ready", len(tables), self)
        return tables

    def etl(
        self,
        songs: PathLike | None = None,
        logs: PathLike | None = None,
        *,
        full_refresh: bool = False,
        prune: bool = False,
        since: DateLike | None = None,
        until: DateLike | None = None,
        max_errors: int = DEFAULT_MAX_ERRORS,
        checks: bool = True,
        wait: float = 0.0,
        progress: ProgressFactory | None = None,
    ) -> RunResult:
        """Load new and changed files (``songs``/``logs``: folders or URLs; default
        ``[S3] SONG_DATA``/``LOG_DATA``) in one transaction, then run the quality checks.

        ``since``/``until`` (dates, inclusive) restrict event files by the day in their name.
        Known files no longer in the input are reported (a warning); ``prune=True`` removes
        their rows.
        Raises ``TooManyRejects`` (exit code 3, rolled back) past ``max_errors`` rejected
        records, ``QualityCheckFailed`` (exit code 4, its ``result`` is the committed run's
        :class:`RunResult`) when a check fails, ``RunInProgress`` when another run holds the
        warehouse longer than ``wait`` seconds. ``progress``: a
        :data:`sparkify.progress.ProgressFactory`; by default progress is logged.
        """
        options = self.etl_options(
            songs,
            logs,
            full_refresh=full_refresh,
            prune=prune,
            since=since,
            until=until,
            max_errors=max_errors,
            wait=wait,
        )
        log.info("loading %s and %s into %s", options.songs, options.logs, self.describe())
        with self.session(wait_seconds=wait) as backend:
            summary = run_etl(backend, options, progress or progress_log())
            result = RunResult.of(summary, run_checks(backend) if checks else None)
        for item in result.ignored:
            log.warning("ignored %s: %s", item.url, item.reason)
        if result.missing and not result.pruned:
            log.warning("%s", result.missing_line())
        log.info("%s", result.summary_line(), extra={"run": result.as_dict()})
        if result.checks is not None:
            result.checks.raise_on_failure(result)
        return result

    def etl_options(
        self,
        songs: PathLike | None = None,
        logs: PathLike | None = None,
        *,
        full_refresh: bool = False,
        prune: bool = False,
        since: DateLike | None = None,
        until: DateLike | None = None,
        max_errors: int = DEFAULT_MAX_ERRORS,
        wait: float = 0.0,
    ) -> EtlOptions:
        """What :meth:`etl` runs, checked (dates, overlapping inputs) but not run."""
        start, end = date_range(since, until)
        song_data = _source(songs, self.settings, "SONG_DATA")
        log_data = _source(logs, self.settings, "LOG_DATA")
        overlap = overlapping_inputs(song_data, log_data)
        if overlap:
            raise ConfigError(overlap)
        options = EtlOptions(
            songs=song_data,
            logs=log_data,
            full_refresh=full_refresh,
            prune=prune,
            since=start,
            until=end,
            max_errors=max_errors,
            wait_seconds=wait,
            settings=self.settings,
        )
        return options

    # -- reading --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        """Run the data-quality checks. Returns their outcomes; ``result.ok`` is false (and
        ``result.raise_on_failure()`` raises ``QualityCheckFailed``) when one failed."""
        with self.session(read_only=True) as backend:
            require_tables(backend)
            return run_checks(backend)

    def query(self, name_or_sql: str, **params: Any) -> Rows:
        """A named query from the catalogue, or SQL with ``:name`` parameters bound from
        ``params``. A named query takes the options its catalogue entry lists
        (``Query.options``): ``limit=N`` (default 10) for the top-N ones (the others ignore
        it), ``grain="day"|"week"|"month"`` for those per period, ``since=``/``until=``
        (a date or ``YYYY-MM-DD``, inclusive) for those over a day range."""
        text = name_or_sql.strip()
        if not _QUERY_NAME.fullmatch(text):
            with self.session(read_only=True) as backend:
                result = backend.query(text, params or None)
            return Rows(result.columns, result.rows)
        query = analytics.get_query(text)  # an unknown name: ConfigError with "did you mean"
        extra = sorted(set(params) - {"limit", *query.options})
        if extra:
            takes = ", ".join(query.options) or "no options"
            raise ConfigError(f"query {text} takes {takes}; got {', '.join(extra)}")
        since, until = date_range(params.get("since"), params.get("until"))
        limit = params.get("limit", analytics.DEFAULT_LIMIT)
        grain = params.get("grain", analytics.DEFAULT_GRAIN)
        with self.session(read_only=True) as backend:
            require_tables(backend)
            result = analytics.run_query(
                backend, text, limit, grain=grain, since=since, until=until
            )
        return Rows(result.columns, result.rows)

    def rejects(self, run_id: int | None = None, *, limit: int | None = None) -> Rows:
        """Quarantined records (run, file, line, reason, raw text), of one run or all."""
        with self.session(read_only=True) as backend:
            require_tables(backend)
            [sql] = backend.statements.get("list_rejects")  # a NULL limit: no limit
            result = backend.query(sql, {"run_id": run_id, "limit": limit})
        return Rows(result.columns, result.rows)

    def report(
        self,
        path: PathLike = "report.html",
        *,
        limit: int = analytics.DEFAULT_LIMIT,
        since: DateLike | None = None,
        until: DateLike | None = None,
    ) -> Report:
        """Write the HTML report to ``path``; returns it (``.path``, ``.outline()``, ...).
        ``since``/``until`` (dates, inclusive) restrict it to the plays of those days."""
        from sparkify.report import build_report

        start, end = date_range(since, until)
        with self.session(read_only=True) as backend:
            report = build_report(backend, limit=limit, since=start, until=end)
        with from_os_error():
            report.write(path)
        log.info("wrote %s", report.path)
        return report


def generate(
    out: PathLike,
    *,
    users: int = 100,
    days: int = 30,
    songs: int = 500,
    seed: int = 42,
    start: DateLike = dt.date(2018, 11, 1),
    match_rate: float = 0.1,
    bad_records: float = 0.0,
    progress: ProgressFactory | None = None,
    workers: int | None = None,
) -> GenerateSummary:
    """Write a synthetic dataset in the public ``song_data``/``log_data`` layout under
    ``out``. The same arguments always give byte-identical files, whatever ``workers``: the
    processes that simulate the events (default: one per idle core for large datasets).
    ``progress``: a :data:`sparkify.progress.ProgressFactory` (one step per day)."""
    try:
        options = GenerateOptions(
            users=users,
            days=days,
            songs=songs,
            seed=seed,
            start=parse_date(start, "start") or dt.date(2018, 11, 1),
            match_rate=match_rate,
            bad_records=bad_records,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    steps = (progress or progress_log())("Generating days", total=days, unit="days")
    with steps as advance, from_os_error():
        summary = write_dataset(
            Path(out), options, progress=lambda done, total: advance(1), workers=workers
        )
    log.info("wrote %d events to %s", summary.events, out)
    return summary


def parse_date(value: DateLike | None, name: str) -> dt.date | None:
    """A date from a date, a datetime or ``YYYY-MM-DD``; else a ConfigError naming ``name``."""
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} must be a date like 2018-11-01, got {value!r}") from None


def date_range(
    since: DateLike | None, until: DateLike | None, names: tuple[str, str] = ("since", "until")
) -> tuple[dt.date | None, dt.date | None]:
    """An inclusive day range, either end open (``None``); a ConfigError naming the
    option (``names``) for a value that is not a date or a range that ends before it starts."""
    start, end = parse_date(since, names[0]), parse_date(until, names[1])
    if start and end and start > end:
        raise ConfigError(f"{names[0]} {start} is after {names[1]} {end}")
    return start, end


def _source(value: PathLike | None, settings: Settings, key: str) -> str:
    if value is not None:
        return os.fspath(value)
    return settings.require("S3", key, "where the raw files are")

"""What every warehouse backend provides. Shared code consults ``capabilities`` and the
dialect's named statements; it never branches on the backend's name.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from sparkify.config import Settings
from sparkify.parsing import Parser
from sparkify.progress import ProgressFactory
from sparkify.schema import Statements
from sparkify.sources import Source, SourceFile
from sparkify.tables import REBUILT

Params = Mapping[str, Any] | None

log = logging.getLogger(__name__)

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Capabilities:
    """How a backend differs, as data."""

    sql_chain: tuple[str, ...]  # dialect files, most specific first
    paramstyle: Literal["dollar", "pyformat"]  # how :name parameters are bound
    supports_schema: bool  # tables live in a configurable schema
    row_format: Literal["json", "rawjson", "pgcopy"] = (
        "json"  # staged rows' encoding (sparkify.staging)
    )
    # writes outside a run's transaction (creating tables) need a transaction of their own
    writes_in_transaction: bool = False
    # a run that rebuilds whole tables builds them on several connections, in a schema of
    # their own, and swaps them in at commit (sparkify.rebuild); the quality checks, too,
    # run on that many connections
    parallel_build: bool = False


@dataclass(frozen=True)
class Sent:
    """A statement as the driver receives it, for the dry run; ``when`` names the
    conditions under which it is sent (see ``sparkify.plan.CONDITIONS``), none: always."""

    sql: str
    when: tuple[str, ...] = ()
    on: str = ""  # the connection that sends it, when not the run's current one


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


def bind_style(sql: str, style: str) -> str:
    """Rewrite ``:name`` parameters for the driver (``$name`` or ``%(name)s``)."""
    if style == "dollar":
        return _PARAM.sub(r"$\1", sql)
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def has_parameters(sql: str) -> bool:
    """Whether ``sql`` takes ``:name`` parameters (then it is sent with them bound)."""
    return bool(_PARAM.search(sql))


def bound_names(sql: str) -> set[str]:
    """The ``:name`` parameters ``sql`` takes."""
    return set(_PARAM.findall(sql))


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Backend(ABC):
    """A warehouse connection that runs the dialect's statements."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    lock_floor_seconds: ClassVar[float] = 0.001  # the shortest wait the lock is given
    # With ``capabilities.parallel_build``: how many connections a rebuild builds tables on
    # (sparkify.rebuild) and the quality checks run on.
    build_connections: ClassVar[int] = 1
    begin_sql: ClassVar[str] = "BEGIN"
    commit_sql: ClassVar[str] = "COMMIT"

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only  # reading commands: no statement may change anything
        self.statements = self.dialect_statements()
        self.wait_seconds = 0.0  # how long lock_run waits for another run (connect sets it)
        self.in_transaction = False

    @classmethod
    def dialect_statements(cls) -> Statements:
        return Statements(cls.capabilities.sql_chain)

    @classmethod
    def driver_sql(cls, sql: str, bound: bool) -> str:
        """``sql`` as the driver receives it: with ``bound`` parameters, in its style."""
        return bind_style(sql, cls.capabilities.paramstyle) if bound else sql

    @classmethod
    @abstractmethod
    def load_statements(cls, table: str) -> list[Sent]:
        """What a bulk load of ``table`` sends (see ``load_canonical``), for the dry run."""

    @classmethod
    def landing_statements(cls) -> list[Sent]:
        """What landing raw files before the run sends (see ``land_raw_files``): nothing."""
        return []

    @classmethod
    def end_parse_statements(cls) -> list[Sent]:
        """What the end of parsing sends (see ``file_parser``): nothing, for the Python parser."""
        return []

    @classmethod
    @abstractmethod
    def insert_sql(cls, table: str, columns: Sequence[str]) -> str:
        """The statement ``insert_rows`` sends."""

    # -- connection ---------------------------------------------------------------------
    @abstractmethod
    def connect(self, wait_seconds: float = 0.0) -> None:
        """Open the connection; wait up to ``wait_seconds`` for a busy warehouse."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data goes, for messages (never includes a password)."""

    def __enter__(self) -> Backend:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statements ---------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Params = None) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Params = None) -> Result: ...

    def run(self, name: str, params: Params = None, all_keys: bool = False) -> None:
        """Execute every statement stored under ``name`` (see ``Statements.get``), each with
        the values of ``params`` it names."""
        started = time.perf_counter()
        for sql in self.statements.get(name, all_keys):
            named = set(_PARAM.findall(sql))
            self.execute(sql, {k: v for k, v in (params or {}).items() if k in named} or None)
        log.debug("%s: %.3f s", name, time.perf_counter() - started, extra={"step": name})

    @abstractmethod
    def existing_tables(self) -> set[str]: ...

    def enforced_keys(self) -> frozenset[tuple[str, tuple[str, ...]]]:
        """The primary keys the warehouse enforces on its tables, as (table, its key's
        columns in name order): the quality checks need not read what they guarantee. None
        where keys are not declared (DuckDB) or not enforced (Redshift)."""
        return frozenset()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute(self.begin_sql)
        self.in_transaction = True
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        finally:
            self.in_transaction = False
        self.execute(self.commit_sql)

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def sibling(self, read_only: bool = False) -> Backend:
        """Another connection to the same warehouse (for work done on several at once)."""
        other = type(self)(self.settings, read_only)
        other.connect(self.wait_seconds)
        return other

    def cancel(self) -> None:
        """Ask the server to stop the statement running on this connection (from another
        thread); nothing to do where statements cannot be cancelled."""
        return None

    # -- rebuilding whole tables on several connections (``capabilities.parallel_build``) --
    def build_prefix(self) -> str:
        """How the names of this warehouse's build schemas start (``sparkify.rebuild``)."""
        raise NotImplementedError(f"{self.name} does not build tables on other connections")

    @classmethod
    def build_tables_sql(cls) -> list[str]:
        """What makes a rebuild's empty tables (``tables.REBUILT``) in its build schema, the
        first build connection's search path."""
        ddl = cls.dialect_statements().table_ddl()
        return [sql for table in REBUILT for sql in ddl[table]]

    def build_connection(self, build_schema: str) -> Backend:
        """A connection that reads and writes the tables of ``build_schema`` (created when
        missing)."""
        raise NotImplementedError(f"{self.name} does not build tables on other connections")

    @classmethod
    def opening_statements(cls, schema: str, create: bool) -> list[Sent]:
        """What ``build_connection`` sends as it connects, for the dry run."""
        raise NotImplementedError(f"{cls.name} does not build tables on other connections")

    @classmethod
    def dead_builds_sql(cls) -> str:
        """The build schemas (``:prefix``: ``build_prefix``) a run that died left behind."""
        raise NotImplementedError(f"{cls.name} does not build tables on other connections")

    @classmethod
    def drop_build_sql(cls, build_schema: str) -> str:
        """Drops a build schema and everything in it."""
        raise NotImplementedError(f"{cls.name} does not build tables on other connections")

    @classmethod
    def swap_sql(cls, schema: str, build_schema: str, tables: Sequence[str]) -> list[str]:
        """Replaces ``tables`` of ``schema`` by those of ``build_schema``, then drops it."""
        raise NotImplementedError(f"{cls.name} does not build tables on other connections")

    def swap(self, build_schema: str) -> None:
        """In the run's transaction: the rebuilt tables of ``build_schema`` replace those of
        the warehouse (``swap_sql``)."""
        raise NotImplementedError(f"{self.name} does not build tables on other connections")

    def unswap(self) -> None:
        """After a failure in or after ``swap``, in the run's transaction: the swap undone,
        the new tables back in their build schema (the run lock still held)."""
        raise NotImplementedError(f"{self.name} does not build tables on other connections")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around changes made outside a run's transaction (creating tables): each statement
        commits on its own, unless the backend ``writes_in_transaction``."""
        if self.in_transaction or not self.capabilities.writes_in_transaction:
            yield
            return
        with self.transaction():
            yield

    def lock_params(self) -> dict[str, str]:
        """The bound values of ``lock_wait``: how long the lock may be waited for, in ms."""
        return {"timeout": str(int(max(self.wait_seconds, self.lock_floor_seconds) * 1000))}

    def lock_run(self) -> None:
        """The first statement of a run's transaction: no other run loads this warehouse
        until it ends. Taken before anything is read, so the run's snapshot starts after
        the lock is held; ``lock_wait`` (before BEGIN) bounds the wait."""
        self.run("lock_run")

    # -- loading ------------------------------------------------------------------------
    @contextmanager
    def bulk_load(self, table: str) -> Iterator[Callable[[Path], None]]:
        """Bulk-load the files handed to the yielded function (see ``load_canonical``).
        Here they are loaded together at the end; a backend may load each as it comes."""
        paths: list[Path] = []
        yield paths.append
        if paths:
            self.load_canonical(table, paths)

    def land_raw_files(
        self,
        listed: Sequence[tuple[Source, Sequence[SourceFile]]],
        max_errors: int,
        progress: ProgressFactory,
    ) -> None:
        """Before the run's transaction: a backend that reads raw files itself may copy the
        ``listed`` files (per source) that are not loaded yet into the warehouse, where its
        ``file_parser`` finds them. Here: nothing."""
        return None

    def file_parser(self, scratch: Path, max_errors: int) -> Parser:
        """What turns a run's files into staged rows: the Python parser, writing part files
        in ``capabilities.row_format`` under ``scratch``. A backend that can read raw files
        itself returns a parser that hands it those files (Redshift)."""
        return Parser(scratch, self.capabilities.row_format)

    @abstractmethod
    def load_canonical(self, table: str, paths: Sequence[Path]) -> int:
        """Bulk-load files of staged rows in ``capabilities.row_format`` (see
        ``sparkify.staging``) into ``table``; returns the rows loaded."""

    @abstractmethod
    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Insert bookkeeping rows (ledger, run record) in bulk, values bound as parameters."""

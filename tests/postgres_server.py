"""A throwaway PostgreSQL server for the test session (a pytest plugin).

``postgres_dsn`` is a superuser DSN on an empty database. When $SPARKIFY_TEST_POSTGRES_DSN is
set, that server is used as is. Otherwise the session starts its own server from the
PostgreSQL binaries installed here: ``initdb`` into a temporary directory, a free loopback
port, fsync off, a UTF-8 locale (so LOWER() folds non-ASCII letters the way DuckDB does),
stopped and removed when the session ends. As root, PostgreSQL refuses to run, so the
server runs as the ``postgres`` user through ``runuser``.

``statement_logs`` makes login roles whose every statement the server logs (``log_statement``
set on the role, ``log_line_prefix`` holding the process id and user name), and reads their
statements back from the server's log file: what a backend really sends, on the wire.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DSN_ENV = "SPARKIFY_TEST_POSTGRES_DSN"
DATABASE = "sparkify_test"
SUPERUSER = "postgres"
PASSWORD_ROLE = "sparkify_pw"  # the one role that must log in with a password (scram)
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found; install them with "
    "`apt-get install -y postgresql` or set SPARKIFY_TEST_POSTGRES_DSN to a server's DSN"
)
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",  # a run opens up to 5 (rebuild, checks); tests add theirs
    "shared_buffers": "128MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",  # time, process id, then user@database
    "timezone": "'UTC'",
}
HBA = f"""\
local all all trust
host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: newest /usr/lib/postgresql/N, else PATH."""

    def version(path: Path) -> int:
        return int(path.name) if path.name.isdigit() else -1

    versions = sorted(Path("/usr/lib/postgresql").glob("*"), key=version, reverse=True)
    candidates = [v / "bin" for v in versions]
    for tool in ("pg_ctl", "initdb"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    usable = (d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists())
    return next(usable, None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayServer:
    """initdb, start and remove one PostgreSQL server in a temporary directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="sparkify-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            if shutil.which("runuser") is None:
                pytest.skip("running as root needs `runuser` to start PostgreSQL as postgres")
            try:
                shutil.chown(self.root, user=SUPERUSER, group=None)
            except LookupError:
                pytest.skip("as root, a `postgres` OS user is needed (apt-get install postgresql)")
            self.as_user = ["runuser", "-u", SUPERUSER, "--"]

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / tool), *args]
        # A session of its own: a Ctrl-C meant for pytest must not stop the server under
        # the tests' feet; the fixture stops it.
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, start_new_session=True
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}\n{log}")

    def init(self) -> None:
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"),
            *("--locale", "C.UTF-8", "--no-sync", "--no-instructions"),
        )
        settings = {**SETTINGS, "unix_socket_directories": f"'{self.root}'"}
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        (self.data / "pg_hba.conf").write_text(HBA, encoding="utf-8")

    def start(self) -> None:
        for attempt in range(3):  # another process may grab the free port first
            self.port = free_port()
            try:
                self._run(
                    "pg_ctl",
                    *("-D", str(self.data), "-l", str(self.log), "-w", "-t", "30"),
                    *("-o", f"-p {self.port}", "start"),
                )
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        deadline = time.monotonic() + 10  # a server already shutting down may still write
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _create_database(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')


@dataclass(frozen=True)
class LoggedStatement:
    pid: int  # the server process, one per connection
    sql: str
    prepared: str | None  # the name of the prepared statement it executed


# The start of a log entry (log_line_prefix, then the level); its next lines start with a tab.
_ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(?P<pid>\d+)\] "
    r"(?:(?P<user>\S*)@\S* )?(?P<level>[A-Z0-9]+):  (?P<text>.*)$"
)
# log_statement's entries: simple queries, and executions of (un)named prepared statements.
_STATEMENT = re.compile(r"^(?:statement|execute (?P<name>[^:]+)): ")


class StatementLog:
    """Every statement that one login role sends, read back from the server's log."""

    def __init__(self, server: ThrowawayServer, role: str) -> None:
        self.server = server
        self.role = role
        self.dsn = f"postgresql://{role}@127.0.0.1:{server.port}/{DATABASE}"
        self.start = server.log.stat().st_size  # only what is logged from now on

    def entries(self) -> Iterator[tuple[int, str, str, str]]:
        """(pid, user, level, text) of each log entry since the log was opened."""
        with self.server.log.open("rb") as log:
            log.seek(self.start)
            lines = log.read().decode("utf-8", errors="replace").split("\n")
        entry: list[str] = []
        for line in lines:
            if line.startswith("\t") and entry:
                entry.append(line[1:])
                continue
            if entry and (found := _ENTRY.match(entry[0])):
                text = "\n".join([found["text"], *entry[1:]])
                yield int(found["pid"]), found["user"] or "", found["level"], text
            entry = [line]

    def statements(self) -> list[LoggedStatement]:
        found = []
        for pid, user, level, text in self.entries():
            if user == self.role and level == "LOG" and (match := _STATEMENT.match(text)):
                name = match["name"] if match["name"] != "<unnamed>" else None
                found.append(LoggedStatement(pid, text[match.end() :], name))
        return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayServer | None]:
    """The session's own server; None when $SPARKIFY_TEST_POSTGRES_DSN names another."""
    if os.environ.get(DSN_ENV):
        yield None
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(INSTALL_HINT)
    server = ThrowawayServer(bindir)
    try:
        server.init()
        server.start()
        _create_database(server.dsn("postgres"), DATABASE)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: ThrowawayServer | None) -> str:
    """DSN of a PostgreSQL superuser on an empty, UTF-8 database."""
    if postgres_server is None:
        return os.environ[DSN_ENV]
    return postgres_server.dsn(DATABASE)


@pytest.fixture(scope="session")
def statement_logs(
    postgres_server: ThrowawayServer | None, postgres_dsn: str
) -> Callable[[], StatementLog]:
    """Makes a new superuser login role whose every statement is logged
    (``ALTER ROLE ... SET log_statement = 'all'``), and its log."""
    if postgres_server is None:
        pytest.skip(f"the statement log is read from the session's own server, not {DSN_ENV}")
    server = postgres_server

    def new_log() -> StatementLog:
        import psycopg

        role = f"logged_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as con:
            con.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
            con.execute(f"ALTER ROLE \"{role}\" SET log_statement = 'all'")
        return StatementLog(server, role)

    return new_log

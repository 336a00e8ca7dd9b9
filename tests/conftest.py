"""Shared fixtures: the real sample, generated data, and one fixture per warehouse backend.

Tests that take ``warehouse`` run once per backend, so every backend answers the same
questions identically. The PostgreSQL server is started by the test run itself
(see ``postgres_server.py``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser import CHROMIUM, Chromium
from click.testing import CliRunner, Result
from datasets import NOV_1, play, song, write_day, write_model_events, write_song

from sparkify.backends import Backend, open_backend
from sparkify.cli import cli
from sparkify.config import Settings, load_settings
from sparkify.generator import GenerateOptions, generate

pytest_plugins = ["postgres_server", "moto_server", "recording"]

SAMPLE_ENV = "SPARKIFY_SAMPLE_DATA"
# Commands log at info without a terminal (as under CliRunner); the tests that assert what
# stderr holds see only warnings and errors, unless they ask for more (tests/test_logging.py).
os.environ.setdefault("SPARKIFY_LOG_LEVEL", "warning")
BACKENDS = ("duckdb", "postgres")


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The public Sparkify sample, read-only, from $SPARKIFY_SAMPLE_DATA."""
    value = os.environ.get(SAMPLE_ENV)
    if not value:
        pytest.skip(f"{SAMPLE_ENV} is not set (point it at the public sample to run this test)")
    path = Path(value)
    if not (path / "song_data").is_dir() or not (path / "log_data").is_dir():
        pytest.skip(f"{SAMPLE_ENV}={value} has no song_data/ and log_data/")
    return path


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset, shared read-only by the session's tests."""
    out = tmp_path_factory.mktemp("generated")
    generate(out, GenerateOptions(users=40, days=10, songs=150, seed=2, match_rate=0.3))
    return out


@pytest.fixture(scope="session")
def faulty_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated data with 2% faulty lines, in which every kind of event the event model
    tells apart occurs (thumbs up and down, upgrades, downgrades, cancellations)."""
    out = tmp_path_factory.mktemp("faulty-generated")
    options = GenerateOptions(users=50, days=30, songs=150, seed=3, bad_records=0.02)
    summary = generate(out, options)
    assert sum(summary.bad_records.values()) > 0
    return out


@pytest.fixture
def model_data(tmp_path: Path) -> Path:
    """Sessions with every kind of event of the event model, and the parsing cases."""
    write_model_events(tmp_path)
    return tmp_path


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@dataclass
class Warehouse:
    """One empty warehouse on one backend, and how to point the CLI and library at it."""

    name: str
    cli_args: list[str]
    overrides: dict[tuple[str, str], str] = field(default_factory=dict)

    def settings(self) -> Settings:
        return load_settings(overrides=self.overrides, environ={}, cwd=Path("/nonexistent"))

    def backend(self) -> Backend:
        return open_backend(self.settings())

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run a warehouse command against this warehouse."""
        return run_cli(*args, *self.cli_args, env=env)

    def query(self, sql: str) -> list[tuple]:
        backend = self.backend()
        backend.connect()
        try:
            return backend.query(sql).rows
        finally:
            backend.close()


def _duckdb_warehouse(tmp_path: Path) -> Warehouse:
    path = str(tmp_path / f"warehouse-{uuid.uuid4().hex[:8]}.duckdb")
    return Warehouse(
        "duckdb",
        ["--backend", "duckdb", "--database", path],
        {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path},
    )


def _postgres_warehouse(dsn: str) -> Warehouse:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return Warehouse(
        "postgres",
        ["--backend", "postgres", "--dsn", dsn, "--schema", schema],
        {
            ("WAREHOUSE", "BACKEND"): "postgres",
            ("WAREHOUSE", "DSN"): dsn,
            ("WAREHOUSE", "SCHEMA"): schema,
        },
    )


@pytest.fixture(params=BACKENDS)
def new_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Warehouse]:
    """Makes empty warehouses on one backend (for comparing different load orders)."""
    if request.param == "duckdb":
        return lambda: _duckdb_warehouse(tmp_path)
    dsn = request.getfixturevalue("postgres_dsn")
    return lambda: _postgres_warehouse(dsn)


@pytest.fixture
def warehouse(new_warehouse: Callable[[], Warehouse]) -> Warehouse:
    """One empty warehouse; tests taking it run once per backend."""
    return new_warehouse()


STAR_ORDER = {
    "songplays": "songplay_id",
    "users": "user_id",
    "songs": "song_id",
    "artists": "artist_id",
    "time": "start_time",
    "user_levels": "user_id, valid_from",
    "user_events": "event_id",
    "sessions": "session_id",
    "subscription_changes": "event_id",
    "song_feedback": "event_id",
    "user_agents": "user_agent",
    "locations": "location",
}


# The public sample's tables (user_levels aside), counted independently of sparkify over the
# raw files: 941 sessions (30 never logged in), 8 Submit Upgrade and 1 Submit Downgrade, no
# thumbs, and the distinct user agents and locations (NULL aside).
SAMPLE_TABLES = {
    "songplays": 6820,
    "users": 97,
    "songs": 71,
    "artists": 69,
    "time": 6813,
    "user_events": 8056,
    "sessions": 941,
    "subscription_changes": 9,
    "song_feedback": 0,
    "user_agents": 40,
    "locations": 63,
}


def dump(warehouse: Warehouse) -> dict[str, list[tuple]]:
    return {
        table: warehouse.query(f"SELECT * FROM {table} ORDER BY {order}")
        for table, order in STAR_ORDER.items()
    }


def etl(warehouse: Warehouse, data: Path, *extra: str) -> dict:
    result = warehouse.cli(
        "etl",
        "--songs",
        str(data / "song_data"),
        "--logs",
        str(data / "log_data"),
        "--json",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def semantics_data(tmp_path: Path) -> Path:
    write_song(tmp_path, song("SO1", "Song One", "The Band", 200.0))
    write_song(tmp_path, song("SO2", "Song One", "The Band", 250.0, artist_id="AR1"))
    write_song(tmp_path, song("SO3", 66, "Numbers", 100.0))  # type: ignore[arg-type]
    write_song(tmp_path, song("SO4", "Late", "Nobody", 10.0, artist_location="Lisbon"))
    write_song(tmp_path, song("SO5", "Other", "Nobody", 10.0, artist_id="AR4"), "SO5")
    t = NOV_1 + 10 * 3_600_000 + 123  # Thursday 2018-11-01 10:00:00.123 UTC
    write_day(
        tmp_path,
        [
            play(t, 1, 10, 0, song=" song one ", artist="THE BAND", length=249.0),
            play(t + 1000, 1, 10, 1, page="Submit Upgrade", song=None),
            play(t + 2000, 1, 10, 2, level="paid", song="66", artist="Numbers", length=100.0),
            play(t + 3000, 2, 11, 0, song="Unknown", artist="Nobody", length=5.0),
            play(t + 4000, 0, 12, 0, page="Home", userId="", firstName=None),
        ],
    )
    return tmp_path


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """Headless Chromium, one per test module (see browser.py)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
    browser = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()

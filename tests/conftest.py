"""Shared fixtures: the real sample, generated data, and one fixture per warehouse backend.

Tests that take ``warehouse`` run once per backend, so every backend answers the same
questions identically. The PostgreSQL server is started by the test run itself
(see ``postgres_server.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sparkify.backends import Backend, open_backend
from sparkify.cli import cli
from sparkify.config import Settings, load_settings
from sparkify.generate import GenerateOptions, generate

pytest_plugins = ["postgres_server"]

SAMPLE_ENV = "SPARKIFY_SAMPLE_DATA"
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
    generate(out, GenerateOptions(users=40, days=10, songs=150, seed=7, match_rate=0.3))
    return out


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


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        path = str(tmp_path / "warehouse.duckdb")
        yield Warehouse(
            "duckdb",
            ["--backend", "duckdb", "--database", path],
            {("WAREHOUSE", "BACKEND"): "duckdb", ("WAREHOUSE", "PATH"): path},
        )
        return
    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield Warehouse(
        "postgres",
        ["--backend", "postgres", "--dsn", dsn, "--schema", schema],
        {
            ("WAREHOUSE", "BACKEND"): "postgres",
            ("WAREHOUSE", "DSN"): dsn,
            ("WAREHOUSE", "SCHEMA"): schema,
        },
    )

"""Placeholder until the PostgreSQL backend lands: PostgreSQL tests are skipped."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    pytest.skip("the PostgreSQL backend is not built yet")

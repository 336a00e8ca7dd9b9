"""sparkify: raw music-streaming JSON to an analytics star schema.

    import sparkify

    with sparkify.connect(database="sparkify.duckdb") as warehouse:
        run = warehouse.etl("data/song_data", "data/log_data")
        top = warehouse.query("top_songs", limit=5)

The names below are the public API (see docs/python-api.md). They are imported on first
use, so ``import sparkify`` loads no database driver and no data library.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("sparkify")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from sparkify.api import Warehouse, connect, generate
    from sparkify.errors import (
        ConfigError,
        ConnectionFailed,
        QualityCheckFailed,
        RunInProgress,
        SourceError,
        SparkifyError,
        TooManyRejects,
        TransientWarehouseError,
        WarehouseError,
    )
    from sparkify.generator import GenerateSummary
    from sparkify.quality import CheckOutcome, CheckResult
    from sparkify.results import Rows, RunResult

_PUBLIC = {
    "connect": "sparkify.api",
    "generate": "sparkify.api",
    "Warehouse": "sparkify.api",
    "RunResult": "sparkify.results",
    "Rows": "sparkify.results",
    "CheckResult": "sparkify.quality",
    "CheckOutcome": "sparkify.quality",
    "GenerateSummary": "sparkify.generator",
    "SparkifyError": "sparkify.errors",
    "ConfigError": "sparkify.errors",
    "SourceError": "sparkify.errors",
    "ConnectionFailed": "sparkify.errors",
    "WarehouseError": "sparkify.errors",
    "TransientWarehouseError": "sparkify.errors",
    "RunInProgress": "sparkify.errors",
    "TooManyRejects": "sparkify.errors",
    "QualityCheckFailed": "sparkify.errors",
}
__all__ = [
    "CheckOutcome",
    "CheckResult",
    "ConfigError",
    "ConnectionFailed",
    "GenerateSummary",
    "QualityCheckFailed",
    "Rows",
    "RunInProgress",
    "RunResult",
    "SourceError",
    "SparkifyError",
    "TooManyRejects",
    "TransientWarehouseError",
    "Warehouse",
    "WarehouseError",
    "__version__",
    "connect",
    "generate",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sparkify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})

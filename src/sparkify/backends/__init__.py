"""Warehouse backends. A new backend is one module here plus one registry entry."""

from __future__ import annotations

from importlib import import_module

from sparkify.backends.base import Backend, Capabilities, Result
from sparkify.config import BACKENDS, Settings, unknown_name_message
from sparkify.errors import ConfigError

# name -> "module:Class", imported lazily so an unused driver is never loaded
REGISTRY = {
    "duckdb": "sparkify.backends.duckdb:DuckDBBackend",
    "postgres": "sparkify.backends.postgres:PostgresBackend",
    "redshift": "sparkify.backends.redshift:RedshiftBackend",
}
assert tuple(REGISTRY) == BACKENDS


def backend_class(name: str) -> type[Backend]:
    if name not in REGISTRY:
        raise ConfigError(unknown_name_message("backend", name, tuple(REGISTRY)))
    module_name, class_name = REGISTRY[name].split(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {name} backend needs a package that is not installed ({exc.name}); "
            f"install it with: pip install 'sparkify[{name}]'"
        ) from None
    cls: type[Backend] = getattr(module, class_name)
    return cls


def open_backend(settings: Settings, read_only: bool = False) -> Backend:
    """The configured backend, not yet connected; ``read_only``: it refuses every statement
    that would change the warehouse, and connecting creates nothing."""
    cls = backend_class(settings.backend)
    if settings.source("WAREHOUSE", "SCHEMA") == "flag" and not cls.capabilities.supports_schema:
        raise ConfigError(
            f"--schema applies to server backends; {settings.backend} keeps its tables in "
            "the database file (--database)"
        )
    return cls(settings, read_only)


__all__ = ["REGISTRY", "Backend", "Capabilities", "Result", "backend_class", "open_backend"]

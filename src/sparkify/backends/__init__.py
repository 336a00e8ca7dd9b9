"""Warehouse backends. A new backend is one module here plus one registry entry."""

from __future__ import annotations

from importlib import import_module

from sparkify.backends.base import Backend, Capabilities, Result
from sparkify.config import BACKENDS, Settings, unknown_name_message
from sparkify.errors import ConfigError, needs

# name -> "module:Class", imported lazily so an unused driver is never loaded
REGISTRY = {
    "duckdb": "sparkify.backends.duckdb:DuckDBBackend",
    "postgres": "sparkify.backends.postgres:PostgresBackend",
    "redshift": "sparkify.backends.redshift:RedshiftBackend",
}
assert tuple(REGISTRY) == BACKENDS
# the extra that installs a backend's packages, and those packages (DuckDB's are in the base)
EXTRAS = {"postgres": ("postgres", ("psycopg",)), "redshift": ("aws", ("psycopg", "boto3"))}


def backend_class(name: str) -> type[Backend]:
    if name not in REGISTRY:
        raise ConfigError(unknown_name_message("backend", name, tuple(REGISTRY)))
    module_name, class_name = REGISTRY[name].split(":")
    extra, packages = EXTRAS.get(name, ("", ()))
    for package in packages:
        with needs(extra, f"the {name} backend"):
            import_module(package)
    module = import_module(module_name)
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

"""Settings from flags, environment, ``dwh.cfg`` and defaults, in that order of precedence.

The file keeps the classic Udacity layout (``[CLUSTER]``, ``[IAM_ROLE]``, ``[S3]``, ``[AWS]``)
and adds ``[WAREHOUSE]``. Every key can be overridden by ``SPARKIFY_<SECTION>_<KEY>``.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from sparkify.errors import ConfigError

DEFAULT_CONFIG_FILE = "dwh.cfg"
ENV_PREFIX = "SPARKIFY_"
BACKENDS = ("duckdb", "postgres", "redshift")


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: str | None = None
    secret: bool = False
    help: str = ""

    @property
    def env_var(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.name}"


KEYS: tuple[Key, ...] = (
    Key("WAREHOUSE", "BACKEND", "duckdb", help="duckdb (default), postgres or redshift"),
    Key("WAREHOUSE", "PATH", "sparkify.duckdb", help="DuckDB database file"),
    Key("WAREHOUSE", "DSN", secret=True, help="postgresql://user@host:port/db (server backends)"),
    Key("WAREHOUSE", "SCHEMA", "public", help="schema for the tables (server backends)"),
    Key("WAREHOUSE", "WORK_MEM", "256MB", help="PostgreSQL work_mem for sparkify's session"),
    Key(
        "WAREHOUSE",
        "MEMORY_LIMIT",
        "1GB",
        help="DuckDB memory_limit (beyond it DuckDB spills to disk; its own default: 80% of RAM)",
    ),
    Key("CLUSTER", "HOST", help="server host name"),
    Key("CLUSTER", "DB_NAME", "sparkify", help="database name"),
    Key("CLUSTER", "DB_USER", help="database user"),
    Key("CLUSTER", "DB_PASSWORD", secret=True, help="prefer the environment or ~/.pgpass"),
    Key("CLUSTER", "DB_PORT", help="5432 for PostgreSQL, 5439 for Redshift"),
    Key("CLUSTER", "IDENTIFIER", "sparkify", help="Redshift cluster identifier"),
    Key("CLUSTER", "NODE_TYPE", "ra3.large", help="Redshift node type"),
    Key("CLUSTER", "NUM_NODES", "1", help="Redshift node count (1 = single-node)"),
    Key("CLUSTER", "NAMESPACE", "sparkify", help="Redshift Serverless namespace (--serverless)"),
    Key("CLUSTER", "WORKGROUP", "sparkify", help="Redshift Serverless workgroup (--serverless)"),
    Key(
        "CLUSTER",
        "RAW_COPY_SESSIONS",
        help="Redshift sessions that COPY raw s3:// files at once; default: the cluster's "
        "slices, at most 16",
    ),
    Key("IAM_ROLE", "ARN", help="role Redshift assumes to read the bucket"),
    Key("IAM_ROLE", "NAME", "sparkify-redshift-s3-read", help="role created by aws up"),
    Key("S3", "LOG_DATA", "sample/log_data", help="event logs: local path, file:// or s3:// URL"),
    Key("S3", "SONG_DATA", "sample/song_data", help="song files: local path or URL"),
    Key("S3", "LOG_JSONPATH", help="classic setting; `aws up` lets the role read its bucket"),
    Key("S3", "ENDPOINT_URL", help="S3-compatible endpoint (MinIO, Ceph); AWS when unset"),
    Key("S3", "ANONYMOUS", "false", help="true: read public buckets without credentials"),
    Key("S3", "STAGING_PREFIX", help="s3:// prefix where Redshift loads stage local files"),
    Key(
        "S3",
        "RAW_COPY_MIN_BYTES",
        "1048576",
        help="Redshift COPYs s3:// source files at least this big itself; off: never",
    ),
    Key("AWS", "REGION", "us-west-2", help="AWS region"),
    Key("AWS", "KEY", secret=True, help="prefer the standard AWS credential chain"),
    Key("AWS", "SECRET", secret=True, help="prefer the standard AWS credential chain"),
)
_KEYS_BY_ID = {(k.section, k.name): k for k in KEYS}
SECTIONS = tuple(dict.fromkeys(k.section for k in KEYS))
ENV_VARS = {k.env_var: (k.section, k.name) for k in KEYS}
# SPARKIFY_* variables that are not settings: the config file, and the test suite's.
OTHER_ENV_VARS = frozenset(
    {
        f"{ENV_PREFIX}CONFIG",
        f"{ENV_PREFIX}LOG_LEVEL",
        f"{ENV_PREFIX}PROGRESS_SECONDS",
        f"{ENV_PREFIX}SAMPLE_DATA",
        f"{ENV_PREFIX}TEST_POSTGRES_DSN",
        f"{ENV_PREFIX}REDSHIFT_TEST_DSN",
    }
)


@dataclass(frozen=True)
class Value:
    value: str | None
    source: str  # "flag", "env SPARKIFY_...", "dwh.cfg path", "default"


@dataclass
class Settings:
    """Resolved settings; ``get`` returns a value, ``source`` says where it came from."""

    values: dict[tuple[str, str], Value] = field(default_factory=dict)
    config_file: Path | None = None
    warnings: list[str] = field(default_factory=list)  # for the user, one line each

    def get(self, section: str, name: str) -> str | None:
        found = self.values.get((section, name))
        return found.value if found else None

    def require(self, section: str, name: str, why: str) -> str:
        value = self.get(section, name)
        if value in (None, ""):
            key = _KEYS_BY_ID.get((section, name), Key(section, name))
            raise ConfigError(
                f"missing [{section}] {name} ({why}); set it in dwh.cfg or {key.env_var}"
            )
        return value

    def source(self, section: str, name: str) -> str:
        found = self.values.get((section, name))
        return found.source if found else "unset"

    @property
    def backend(self) -> str:
        return self.get("WAREHOUSE", "BACKEND") or "duckdb"

    def describe(self) -> list[dict[str, str | None]]:
        """Every setting with its source, secrets masked."""
        rows = []
        for (section, name), found in sorted(self.values.items(), key=_key_order):
            shown = mask(found.value) if is_secret(section, name) else found.value
            rows.append({"section": section, "key": name, "value": shown, "source": found.source})
        return rows


def _key_order(item: tuple[tuple[str, str], Value]) -> tuple[int, str, str]:
    (section, name), _ = item
    known = [i for i, k in enumerate(KEYS) if (k.section, k.name) == (section, name)]
    return (known[0] if known else len(KEYS), section, name)


def is_secret(section: str, name: str) -> bool:
    key = _KEYS_BY_ID.get((section, name))
    return bool(key and key.secret) or "PASSWORD" in name or "SECRET" in name


def mask(value: str | None) -> str | None:
    """Hide a secret but show that it is set."""
    if not value:
        return value
    if re.search(r"(?i)password=", value):  # libpq key=value or ?password= in a URL
        value = re.sub(r"(?i)(password=)('[^']*'|[^&\s]*)", r"\1***", value)
        if "://" not in value or "@" not in value:
            return value
    if "://" in value and "@" in value:  # a DSN: mask only the password part
        scheme, rest = value.split("://", 1)
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in userinfo else value
    return "***"


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_config_file(path: Path) -> dict[tuple[str, str], str]:
    """The settings in ``path`` (a byte-order mark is fine); an unknown section or key is an
    error naming it, with the closest known name."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str.upper  # type: ignore[assignment,method-assign]
    try:
        with path.open(encoding="utf-8-sig") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"cannot parse config file {path}: {first_line}") from None
    values = {
        (section.upper(), name): _unquote(value)
        for section in parser.sections()
        for name, value in parser.items(section)
    }
    for section, name in values:
        if section not in SECTIONS:
            raise ConfigError(f"{path}: " + unknown_name_message("section", section, SECTIONS))
        if (section, name) not in _KEYS_BY_ID:
            names = tuple(k.name for k in KEYS if k.section == section)
            raise ConfigError(f"{path}: " + unknown_name_message(f"[{section}] key", name, names))
    return values


def exposed_secrets(path: Path, values: Mapping[tuple[str, str], str]) -> str | None:
    """A warning when the file holds a secret and other users may read it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    secrets = [
        f"[{section}] {name}"
        for (section, name), value in values.items()
        if value and is_secret(section, name) and mask(value) != value
    ]
    if not secrets or not mode & 0o077:
        return None
    return (
        f"{path} holds a secret ({', '.join(secrets)}) and other users can read it "
        f"(mode {mode:04o}); run: chmod 600 {path}"
    )


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[tuple[str, str], str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings: flag > environment > config file > default.

    ``config_path`` must exist when given; otherwise ``dwh.cfg`` in ``cwd`` is used if present.
    """
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    if config_path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_path = environ[f"{ENV_PREFIX}CONFIG"]
    path: Path | None
    if config_path is not None:
        path = Path(config_path)
    else:
        candidate = cwd / DEFAULT_CONFIG_FILE
        path = candidate if candidate.exists() else None
    from_file = read_config_file(path) if path else {}

    settings = Settings(config_file=path)
    exposed = exposed_secrets(path, from_file) if path else None
    if exposed:
        settings.warnings.append(exposed)
    for key in KEYS:
        if key.default is not None:
            settings.values[(key.section, key.name)] = Value(key.default, "default")
    for ident, value in from_file.items():
        settings.values[ident] = Value(value, str(path))
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARS:
            continue
        if name not in ENV_VARS:
            raise ConfigError(
                unknown_name_message(
                    "environment variable",
                    name,
                    tuple(ENV_VARS),
                    "`sparkify config` lists the settings, each SPARKIFY_<SECTION>_<KEY>.",
                )
            )
        settings.values[ENV_VARS[name]] = Value(_unquote(value), f"env {name}")
    for flag_ident, flag_value in (overrides or {}).items():
        if flag_value is not None:
            settings.values[flag_ident] = Value(str(flag_value), "flag")
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    backend = settings.backend.strip().lower()
    if backend not in BACKENDS:
        raise ConfigError(unknown_name_message("backend", backend, BACKENDS))
    settings.values[("WAREHOUSE", "BACKEND")] = Value(
        backend, settings.source("WAREHOUSE", "BACKEND")
    )
    schema = settings.get("WAREHOUSE", "SCHEMA")
    if schema is not None and not schema.strip():
        source = settings.source("WAREHOUSE", "SCHEMA")
        where = "[WAREHOUSE] SCHEMA"  # from the file
        if source == "flag":
            where = "--schema"
        elif source.startswith("env "):
            where = source.removeprefix("env ")
        raise ConfigError(f"{where} must name a schema, got {schema!r}")
    port = settings.get("CLUSTER", "DB_PORT")
    if port not in (None, "") and not port.isdigit():
        raise ConfigError(f"[CLUSTER] DB_PORT must be a port number, got {port!r}")


def _place(location: str) -> tuple[str, ...]:
    """Where a source reads, as path parts: the scheme, then each folder (local paths with
    their links resolved), so that one place is recognised however it is written."""
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) > 1:
        return (parsed.scheme.lower(), parsed.netloc, *filter(None, parsed.path.split("/")))
    path = unquote(parsed.path) if parsed.scheme == "file" else location
    return ("file", *Path(os.path.realpath(Path(path).expanduser())).parts)


def overlapping_inputs(songs: str, logs: str) -> str | None:
    """Why the song files and the event logs cannot be read from these places, or None:
    the same files would be loaded as both kinds."""
    song_files = ("song files", songs, _place(songs))
    event_logs = ("event logs", logs, _place(logs))
    if song_files[2] == event_logs[2]:
        return (
            f"the song files and the event logs are read from the same place ({songs}); "
            "give each its own folder"
        )
    for (kind, shown, place), (outer_kind, outer_shown, outer_place) in (
        (event_logs, song_files),
        (song_files, event_logs),
    ):
        if place[: len(outer_place)] == outer_place:
            return (
                f"the {kind} ({shown}) are inside the folder of the {outer_kind} "
                f"({outer_shown}); give each its own folder"
            )
    return None


def unknown_name_message(
    kind: str, name: str, choices: tuple[str, ...], otherwise: str = ""
) -> str:
    """ "unknown KIND 'NAME'." and the closest choice, else ``otherwise`` or every choice."""
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"Did you mean '{close[0]}'?" if close else otherwise
    return f"unknown {kind} '{name}'. {hint or 'Choose one of: ' + ', '.join(choices) + '.'}"


TEMPLATE = """\
# sparkify configuration. Precedence: command-line flag > environment variable
# SPARKIFY_<SECTION>_<KEY> (for example SPARKIFY_CLUSTER_DB_PASSWORD) > this file > defaults.
# Values may be quoted. Keep secrets out of this file: use the environment or ~/.pgpass.

[WAREHOUSE]
# duckdb (embedded, default), postgres or redshift
BACKEND = duckdb
# DuckDB database file
PATH = sparkify.duckdb
# Schema for the tables on server backends
SCHEMA = public
# Optional connection URL for server backends, instead of [CLUSTER]:
# DSN = postgresql://sparkify@127.0.0.1:5432/sparkify

[CLUSTER]
# Server backends (postgres, redshift). `sparkify aws up` fills HOST for Redshift.
HOST =
DB_NAME = sparkify
DB_USER = sparkify
# DB_PASSWORD = (prefer SPARKIFY_CLUSTER_DB_PASSWORD or ~/.pgpass)
DB_PORT = 5432

[IAM_ROLE]
# Role Redshift assumes to read the bucket; `sparkify aws up` fills it in.
ARN =

[S3]
# Raw data: local paths, file:// or s3:// URLs
LOG_DATA = sample/log_data
SONG_DATA = sample/song_data
# Where Redshift COPY stages the validated rows (s3:// prefix; redshift backend only)
# STAGING_PREFIX = s3://my-bucket/sparkify-staging/
# S3-compatible endpoint (MinIO, Ceph); leave unset for AWS
# ENDPOINT_URL = http://127.0.0.1:9000

[AWS]
REGION = us-west-2
"""

"""Settings: precedence, the classic dwh.cfg layout, masking and clear errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import run_cli

from sparkify.config import TEMPLATE, load_settings, mask
from sparkify.errors import ConfigError

CLASSIC = """\
[CLUSTER]
HOST='dwhcluster.abc.us-west-2.redshift.amazonaws.com'
DB_NAME="dwh"
DB_USER='dwhuser'
DB_PASSWORD='Passw0rd'
DB_PORT=5439

[IAM_ROLE]
ARN='arn:aws:iam::123456789012:role/dwhRole'

[S3]
LOG_DATA='s3://udacity-dend/log_data'
LOG_JSONPATH='s3://udacity-dend/log_json_path.json'
SONG_DATA='s3://udacity-dend/song_data'

[AWS]
REGION='us-west-2'
"""


@pytest.fixture
def classic(tmp_path: Path) -> Path:
    path = tmp_path / "dwh.cfg"
    path.write_text(CLASSIC)
    return path


def test_the_classic_file_is_read_with_quotes_removed(classic: Path) -> None:
    settings = load_settings(classic, environ={})
    assert settings.get("CLUSTER", "HOST") == "dwhcluster.abc.us-west-2.redshift.amazonaws.com"
    assert settings.get("CLUSTER", "DB_NAME") == "dwh"
    assert settings.get("IAM_ROLE", "ARN") == "arn:aws:iam::123456789012:role/dwhRole"
    assert settings.get("S3", "LOG_DATA") == "s3://udacity-dend/log_data"
    assert settings.backend == "duckdb"  # no [WAREHOUSE]: the embedded default
    assert settings.source("CLUSTER", "HOST") == str(classic)


def test_flag_beats_environment_beats_file_beats_default(classic: Path) -> None:
    environ = {"SPARKIFY_CLUSTER_DB_NAME": "from_env", "SPARKIFY_WAREHOUSE_PATH": "env.duckdb"}
    settings = load_settings(
        classic, overrides={("CLUSTER", "DB_NAME"): "from_flag"}, environ=environ
    )
    assert settings.get("CLUSTER", "DB_NAME") == "from_flag"
    assert settings.source("CLUSTER", "DB_NAME") == "flag"
    assert settings.get("WAREHOUSE", "PATH") == "env.duckdb"
    assert settings.source("WAREHOUSE", "PATH") == "env SPARKIFY_WAREHOUSE_PATH"
    assert settings.get("CLUSTER", "DB_USER") == "dwhuser"
    assert settings.get("AWS", "REGION") == "us-west-2"
    assert load_settings(environ={}, cwd=classic.parent / "none").source("AWS", "REGION") == (
        "default"
    )


def test_the_working_directory_file_is_found(classic: Path) -> None:
    settings = load_settings(environ={}, cwd=classic.parent)
    assert settings.config_file == classic


def test_no_config_file_is_needed(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.config_file is None
    assert settings.backend == "duckdb"
    assert settings.get("WAREHOUSE", "PATH") == "sparkify.duckdb"


def test_an_unknown_backend_suggests_the_closest_name() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown backend 'postgress'. Did you mean 'postgres'\?"
    ):
        load_settings(overrides={("WAREHOUSE", "BACKEND"): "postgress"}, environ={})


def test_cli_config_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    result = run_cli("config", "--backend", "duckbd")
    assert result.exit_code == 2
    assert result.stderr == "error: unknown backend 'duckbd'. Did you mean 'duckdb'?\n"

    result = run_cli("config", "--config", str(tmp_path / "missing.cfg"))
    assert result.exit_code == 2
    assert result.stderr == f"error: config file not found: {tmp_path / 'missing.cfg'}\n"

    broken = tmp_path / "broken.cfg"
    broken.write_text("HOST = x\n")
    result = run_cli("config", "--config", str(broken))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot parse config file {broken}: ")
    assert len(result.stderr.splitlines()) == 1

    bad_port = tmp_path / "port.cfg"
    bad_port.write_text("[CLUSTER]\nDB_PORT = fifty\n")
    result = run_cli("config", "--config", str(bad_port))
    assert result.stderr == "error: [CLUSTER] DB_PORT must be a port number, got 'fifty'\n"


def test_a_missing_required_value_names_the_setting_and_variable() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ConfigError) as error:
        settings.require("CLUSTER", "HOST", "the server to connect to")
    assert str(error.value) == (
        "missing [CLUSTER] HOST (the server to connect to); "
        "set it in dwh.cfg or SPARKIFY_CLUSTER_HOST"
    )


def test_secrets_are_masked_in_config_output(classic: Path) -> None:
    env = {"SPARKIFY_WAREHOUSE_DSN": "postgresql://bob:hunter2@db:5432/x"}
    result = run_cli("config", "--config", str(classic), "--json", env=env)
    assert result.exit_code == 0
    assert "Passw0rd" not in result.stdout and "hunter2" not in result.stdout
    rows = {(r["section"], r["key"]): r for r in json.loads(result.stdout)["settings"]}
    assert rows[("CLUSTER", "DB_PASSWORD")]["value"] == "***"
    assert rows[("WAREHOUSE", "DSN")]["value"] == "postgresql://bob:***@db:5432/x"
    assert rows[("WAREHOUSE", "DSN")]["source"] == "env SPARKIFY_WAREHOUSE_DSN"
    table = run_cli("config", "--config", str(classic))
    assert "Passw0rd" not in table.stdout


def test_mask_keeps_passwordless_dsns_readable() -> None:
    assert mask("postgresql://bob@db/x") == "postgresql://bob@db/x"
    assert mask("") == ""
    assert mask(None) is None


def test_init_writes_a_template_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init").exit_code == 0
    assert (tmp_path / "dwh.cfg").read_text() == TEMPLATE
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.get("S3", "SONG_DATA") == "sample/song_data"
    again = run_cli("init")
    assert again.exit_code == 2
    assert again.stderr == "error: dwh.cfg already exists; use --force to overwrite it\n"
    assert run_cli("init", "--force").exit_code == 0


def test_passwords_in_dsn_parameters_are_masked() -> None:
    assert mask("postgresql://bob@db/sp?password=hunter2&sslmode=require") == (
        "postgresql://bob@db/sp?password=***&sslmode=require"
    )
    assert mask("host=db password='hunter 2' user=bob") == "host=db password=*** user=bob"
    assert mask("postgresql://bob:pw@db/sp?password=x") == "postgresql://bob:***@db/sp?password=***"


# -- silent mistakes become errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[WAREHOUSE]\nBAKEND = postgres\n",
            "unknown [WAREHOUSE] key 'BAKEND'. Did you mean 'BACKEND'?",
        ),
        (
            "[WAREHOSE]\nBACKEND = postgres\n",
            "unknown section 'WAREHOSE'. Did you mean 'WAREHOUSE'?",
        ),
        (
            "[CLUSTER]\nDB_PASWORD = x\n",
            "unknown [CLUSTER] key 'DB_PASWORD'. Did you mean 'DB_PASSWORD'?",
        ),
        ("[S3]\nQQQ = 1\n", "unknown [S3] key 'QQQ'. Choose one of: LOG_DATA, SONG_DATA,"),
        ("[DWH]\nDWH_DB = x\n", "unknown section 'DWH'. Choose one of: WAREHOUSE, CLUSTER,"),
    ],
)
def test_unknown_keys_and_sections_in_the_file_are_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "dwh.cfg"
    path.write_text(text)
    result = run_cli("config", "--config", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: {message}")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SPARKIFY_WAREHOUSE_BAKEND", "Did you mean 'SPARKIFY_WAREHOUSE_BACKEND'?"),
        ("SPARKIFY_WAREHUSE_BACKEND", "Did you mean 'SPARKIFY_WAREHOUSE_BACKEND'?"),
        ("SPARKIFY_CLUSTER_PASSWORD", "Did you mean 'SPARKIFY_CLUSTER_DB_PASSWORD'?"),
        ("SPARKIFY_BACKEND", "Did you mean 'SPARKIFY_WAREHOUSE_BACKEND'?"),
    ],
)
def test_unknown_sparkify_variables_are_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={name: "postgres"}, cwd=Path("/nonexistent"))
    assert str(error.value) == f"unknown environment variable '{name}'. {message}"
    result = run_cli("config", env={name: "postgres"})
    assert result.exit_code == 2
    assert result.stderr == f"error: unknown environment variable '{name}'. {message}\n"


def test_the_other_sparkify_variables_are_not_settings() -> None:
    environ = {
        "SPARKIFY_CONFIG": "/nonexistent/dwh.cfg",
        "SPARKIFY_SAMPLE_DATA": "/data",
        "SPARKIFY_TEST_POSTGRES_DSN": "postgresql://x",
        "SPARKIFY_REDSHIFT_TEST_DSN": "postgresql://y",
    }
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(environ=environ)
    del environ["SPARKIFY_CONFIG"]
    assert load_settings(environ=environ, cwd=Path("/nonexistent")).backend == "duckdb"


def test_a_byte_order_mark_opens_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dwh.cfg"
    path.write_bytes(b"\xef\xbb\xbf" + CLASSIC.encode())
    assert load_settings(path, environ={}).get("CLUSTER", "DB_NAME") == "dwh"


@pytest.mark.parametrize("schema", ["", " ", "\t"])
def test_a_blank_schema_is_a_usage_error(schema: str, tmp_path: Path) -> None:
    result = run_cli(
        "create-tables",
        "--backend",
        "postgres",
        "--dsn",
        "postgresql://u@127.0.0.1:1/x",
        "--schema",
        schema,
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: --schema must name a schema, got {schema!r}\n"
    path = tmp_path / "dwh.cfg"
    path.write_text(f"[WAREHOUSE]\nSCHEMA = '{schema}'\n")
    with pytest.raises(ConfigError, match=r"^\[WAREHOUSE\] SCHEMA must name a schema, got "):
        load_settings(path, environ={})


# -- secrets in the config file -------------------------------------------------------------


def test_init_writes_the_file_for_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init").exit_code == 0
    assert stat.S_IMODE((tmp_path / "dwh.cfg").stat().st_mode) == 0o600
    (tmp_path / "dwh.cfg").chmod(0o644)
    assert run_cli("init", "--force").exit_code == 0
    assert stat.S_IMODE((tmp_path / "dwh.cfg").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("[CLUSTER]\nDB_PASSWORD = hunter2\n", "[CLUSTER] DB_PASSWORD"),
        ("[WAREHOUSE]\nDSN = postgresql://bob:hunter2@db/x\n", "[WAREHOUSE] DSN"),
        ("[AWS]\nSECRET = abc\n", "[AWS] SECRET"),
    ],
)
def test_a_secret_in_a_file_others_can_read_is_warned_about(
    tmp_path: Path, text: str, secret: str
) -> None:
    path = tmp_path / "dwh.cfg"
    path.write_text(text)
    path.chmod(0o644)
    result = run_cli("config", "--config", str(path))
    assert result.exit_code == 0
    assert result.stderr == (
        f"warning: {path} holds a secret ({secret}) and other users can read it "
        f"(mode 0644); run: chmod 600 {path}\n"
    )
    assert "hunter2" not in result.stderr
    path.chmod(0o600)
    assert run_cli("config", "--config", str(path)).stderr == ""
    path.chmod(0o640)
    assert "(mode 0640)" in run_cli("config", "--config", str(path)).stderr


def test_a_file_without_secrets_may_be_readable(tmp_path: Path) -> None:
    path = tmp_path / "dwh.cfg"
    path.write_text("[WAREHOUSE]\nDSN = postgresql://bob@db/x\n[CLUSTER]\nDB_PASSWORD =\n")
    path.chmod(0o644)
    assert run_cli("config", "--config", str(path)).stderr == ""

"""``sparkify init`` and ``sparkify config``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sparkify.cli.common import (
    WarehouseOptions,
    echo_json,
    echo_line,
    print_table,
    warehouse_options,
)
from sparkify.config import DEFAULT_CONFIG_FILE, TEMPLATE
from sparkify.errors import ConfigError


@click.command("init")
@click.option("--path", default=DEFAULT_CONFIG_FILE, show_default=True, help="Where to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: str, force: bool) -> None:
    """Write a commented dwh.cfg template.

    \b
    Example:
      sparkify init && sparkify config
    """
    target = Path(path)
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; use --force to overwrite it")
    # Only its owner may read it: the template invites a password.
    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(handle, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(TEMPLATE)
    echo_line(f"wrote {target}")


@click.command("config")
@warehouse_options
def config_command(options: WarehouseOptions) -> None:
    """Show the resolved settings and where each came from (secrets masked).

    \b
    Example:
      SPARKIFY_WAREHOUSE_BACKEND=postgres sparkify config --json
    """
    settings = options.settings()
    rows = settings.describe()
    if options.json:
        echo_json({"config_file": str(settings.config_file or ""), "settings": rows})
        return
    title = f"config file: {settings.config_file or '(none)'}"
    print_table(["section", "key", "value", "source"], [list(r.values()) for r in rows], title)


COMMANDS = (init_command, config_command)

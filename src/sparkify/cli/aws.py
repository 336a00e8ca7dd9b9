"""``sparkify aws up | status | down``: the Redshift resources, from nothing and back.

The work happens in ``sparkify.infrastructure``; this module gathers what only a person can
supply (the allowed network, the master password, a confirmation), shows progress and
costs, and reports what was written back into dwh.cfg.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import click

from sparkify.cli.common import (
    echo_json,
    echo_line,
    json_option,
    print_table,
    settings_for_people,
)
from sparkify.config import Settings, load_settings
from sparkify.errors import ConfigError, SparkifyError
from sparkify.infrastructure import (
    CostRow,
    Infrastructure,
    check_password,
    cluster_cost,
    cost_rows,
    deletions,
    discover_public_ip,
    forget_endpoints,
    generate_password,
    hourly_usd,
    open_to_everyone,
    resolve_cidr,
    serverless_cost,
    status_report,
    write_endpoint,
)
from sparkify.text import printable


@dataclass(frozen=True)
class AwsOptions:
    """The options every ``aws`` command accepts, built once at the CLI boundary."""

    config: str | None
    region: str | None
    quiet: bool
    json: bool

    def settings(self) -> Settings:
        return settings_for_people(load_settings(self.config, {("AWS", "REGION"): self.region}))

    def say(self, message: str) -> None:
        """Chatter for people: on stderr, silent with --quiet or --json."""
        if not (self.quiet or self.json):
            echo_line(message, err=True)


def aws_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config/--region/--quiet/--json as ``options``."""

    @click.option("--config", "config", metavar="FILE", help="Config file (default: ./dwh.cfg).")
    @click.option("--region", metavar="NAME", help="AWS region ([AWS] REGION).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress display or chatter.")
    @json_option
    @functools.wraps(command)
    def wrapper(
        config: str | None, region: str | None, quiet: bool, as_json: bool, **kwargs: Any
    ) -> Any:
        return command(options=AwsOptions(config, region, quiet, as_json), **kwargs)

    return wrapper


# -- what a person supplies --------------------------------------------------------------------
class PasswordSource:
    """The master password, asked for only when a cluster or namespace is created:
    [CLUSTER] DB_PASSWORD (the environment, preferably), else a prompt on a terminal, else
    generated and printed once on stderr. It is never written to a file."""

    def __init__(
        self,
        configured: str | None,
        interactive: bool,
        pause: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.configured = check_password(configured) if configured else None
        self.interactive = interactive
        self.pause = pause  # stops the progress display while asking
        self.generated = False
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            with self.pause():
                self._value = self.configured or self._ask()
        return self._value

    def _ask(self) -> str:
        if self.interactive:
            typed = click.prompt(
                "Master password for the new warehouse (Enter: generate one)",
                hide_input=True, default="", show_default=False,
            )  # fmt: skip
            if typed:
                check_password(typed)
                if click.prompt("Repeat it", hide_input=True) != typed:
                    raise ConfigError("the two passwords differ; run sparkify aws up again")
                return str(typed)
        self.generated = True
        password = generate_password()
        click.echo(
            f"master password (shown once, saved nowhere; keep it or use IAM credentials): "
            f"{password}",
            err=True,
        )
        return password


# -- display ----------------------------------------------------------------------------------
@dataclass
class Reporter:
    """Log lines and a waiting display: a spinner on a terminal, one line per state otherwise."""

    options: AwsOptions
    console: Any = None
    status: Any = None
    last: str = ""

    def log(self, message: str) -> None:
        if self.console is not None:
            self.console.print(printable(message), highlight=False, markup=False)
        else:
            self.options.say(message)

    @contextmanager
    def paused(self) -> Iterator[None]:
        if self.status is not None:
            self.status.stop()
        try:
            yield
        finally:
            if self.status is not None:
                self.status.start()

    def tick(self, message: str, elapsed: float) -> None:
        if self.status is not None:
            from rich.text import Text

            self.status.update(Text(printable(f"{message} ({elapsed:.0f} s)")))
        elif message != self.last:
            self.options.say(f"waiting for {message}")
        self.last = message


@contextmanager
def reporting(options: AwsOptions) -> Iterator[Reporter]:
    reporter = Reporter(options)
    if options.quiet or options.json or os.environ.get("CI") or not sys.stderr.isatty():
        yield reporter
        return
    from rich.console import Console

    reporter.console = Console(stderr=True)
    with reporter.console.status("working") as status:
        reporter.status = status
        yield reporter


def print_costs(rows: list[CostRow]) -> None:
    print_table(
        ["resource", "unit", "count", "USD/hour (approx.)"],
        [(r, u, c, "unknown" if usd is None else f"{usd:.3f}") for r, u, c, usd in rows],
        "Estimated on-demand cost (storage and data transfer extra)",
    )


# -- commands ---------------------------------------------------------------------------------
@click.group("aws")
def aws_group() -> None:
    """Create, inspect and delete the Amazon Redshift resources (boto3, your AWS credentials).

    \b
    From nothing to loaded and back:
      sparkify aws up --cidr 203.0.113.7/32
      sparkify create-tables --backend redshift
      sparkify etl --backend redshift
      sparkify aws down --yes
    """


def timeout_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--timeout SECONDS`` (30 minutes by default) with a command's own help text."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=1800,
        show_default=True,
        metavar="SECONDS",
        help=help_text,
    )


@aws_group.command("up")
@aws_options
@click.option("--cidr", metavar="NETWORK", help="Who may reach port 5439 (default: your IP/32).")
@click.option("--allow-anywhere", is_flag=True, help="Allow 0.0.0.0/0 (not recommended).")
@click.option("--serverless", is_flag=True, help="Redshift Serverless instead of a cluster.")
@click.option(
    "--base-capacity",
    type=click.IntRange(8, 1024),
    default=8,
    show_default=True,
    help="Serverless base capacity in RPUs.",
)
@timeout_option("How long to wait for the warehouse to become available.")
def up_command(
    options: AwsOptions,
    cidr: str | None,
    allow_anywhere: bool,
    serverless: bool,
    base_capacity: int,
    timeout: float,
) -> None:
    """Create or reuse the role, network rule and cluster; wait; write HOST to dwh.cfg.

    Idempotent: after any failure, run it again to finish the job. The master password comes
    from SPARKIFY_CLUSTER_DB_PASSWORD, a prompt, or is generated and printed once (never
    saved). Port 5439 opens to --cidr, by default your own public address only.

    \b
    Examples:
      sparkify aws up --cidr 203.0.113.7/32
      SPARKIFY_CLUSTER_DB_PASSWORD="$PW" sparkify aws up --serverless --timeout 900
    """
    settings = options.settings()
    network = resolve_cidr(cidr, allow_anywhere, discover_public_ip)
    if open_to_everyone(network):
        echo_line(f"warning: port 5439 will be open to the whole internet ({network})", err=True)
    interactive = sys.stdin.isatty() and not options.json
    configured = settings.get("CLUSTER", "DB_PASSWORD")
    with reporting(options) as reporter:
        password = PasswordSource(configured, interactive, reporter.paused)
        infra = Infrastructure.from_settings(settings, serverless, base_capacity, reporter.log)
        result = infra.up(network, password, timeout, reporter.tick)
    spec = infra.spec
    costs = [
        serverless_cost(spec.workgroup, spec.base_capacity)
        if spec.serverless
        else cluster_cost(spec.identifier, spec.node_type, spec.num_nodes)
    ]
    path, written = write_endpoint(settings, spec, result)
    report = {
        **result.as_dict(),
        "config_file": str(path),
        "config_written": written,
        "password_generated": password.generated,
        "hourly_usd": hourly_usd(costs),
    }
    if options.json:
        echo_json(report)
        return
    options.say(f"wrote {', '.join(written)} to {path}")
    if not options.quiet:
        print_costs(costs)
        echo_line(f"next: sparkify create-tables --backend redshift --config {path}")


SERVERLESS = click.option(
    "--serverless",
    is_flag=True,
    help="Redshift Serverless (implied when dwh.cfg HOST is a Serverless endpoint).",
)


@aws_group.command("status")
@aws_options
@SERVERLESS
def status_command(options: AwsOptions, serverless: bool) -> None:
    """Show what exists, its state and its hourly cost.

    \b
    Examples:
      sparkify aws status --json
      sparkify aws status --serverless
    """
    settings = options.settings()
    with reporting(options) as reporter:
        status = status_report(settings, serverless, reporter.log)
    if options.json:
        echo_json(status)
        return
    print_table(["resource", "name", "state", "detail"], _status_rows(status), status["region"])
    host = status["config"]["host"]
    if host and not status["config"]["host_is_live"]:
        echo_line(f"note: dwh.cfg HOST {host} is not this running warehouse")
    costs = cost_rows(status)
    if costs and not options.quiet:
        print_costs(costs)


def _status_rows(status: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    role, warehouse, group = status["role"], status["warehouse"], status["security_group"]
    rows = [
        (
            "IAM role",
            role["name"],
            "exists" if role["exists"] else "absent",
            ", ".join(role["policies"]),
        )
    ]
    if status["kind"] == "serverless":
        detail = f"{warehouse['base_capacity_rpu']} RPU at {warehouse['host']}"
        rows.append(
            (
                "Serverless namespace",
                warehouse["namespace"],
                warehouse["namespace_status"] or "absent",
                "",
            )
        )
        rows.append(
            (
                "Serverless workgroup",
                warehouse["name"],
                warehouse["status"] or "absent",
                detail if warehouse["status"] else "",
            )
        )
    else:
        size = f"{warehouse['nodes']} x {warehouse['node_type']}"
        detail = f"{size} at {warehouse['host']}:{warehouse['port']}"
        rows.append(
            (
                "cluster",
                warehouse["name"],
                warehouse["status"] or "absent",
                detail if warehouse["exists"] else "",
            )
        )
    open_to = ", ".join(group["port_5439_open_to"]) or "nobody"
    rows.append(
        (
            "security group",
            group["name"],
            group["id"] or "absent",
            f"port 5439 open to {open_to}" if group["exists"] else "",
        )
    )
    return rows


@aws_group.command("down")
@aws_options
@SERVERLESS
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--final-snapshot", metavar="NAME", help="Keep a final snapshot named NAME.")
@timeout_option("How long to wait for the deletions to finish.")
def down_command(
    options: AwsOptions, serverless: bool, yes: bool, final_snapshot: str | None, timeout: float
) -> None:
    """Delete everything `aws up` created, and wait until it is gone.

    Deletes the cluster (or, with --serverless, the workgroup and namespace), the security
    group with its ingress rule, and the IAM role: only resources tagged created-by=sparkify.
    Safe to rerun.

    \b
    Example:
      sparkify aws down --yes --final-snapshot sparkify-final
    """
    settings = options.settings()
    with reporting(options) as reporter:
        infra = Infrastructure.from_settings(settings, serverless, log=reporter.log)
        before = infra.status()
    doomed = deletions(before)
    if not doomed:
        options.say("nothing to delete")
        if options.json:
            echo_json({"deleted": [], "config_written": []})
        return
    if not yes:
        try:
            confirmed = click.confirm(f"Delete {', '.join(doomed)}?", default=False, err=True)
        except click.Abort:
            confirmed = False
        if not confirmed:
            raise SparkifyError("cancelled, nothing was deleted (--yes skips this question)")
    with reporting(options) as reporter:
        infra.log = reporter.log
        infra.down(final_snapshot, timeout, reporter.tick)
    written = forget_endpoints(settings, before)
    if options.json:
        echo_json({"deleted": doomed, "config_written": written})
    else:
        options.say("everything sparkify created is gone")


COMMANDS = (aws_group,)

"""``sparkify aws up | status | down``: the Redshift resources, from nothing and back.

The work happens in ``sparkify.infrastructure``; this module gathers what only a person can
supply (the allowed network, the master password, a confirmation), shows progress and
costs, and writes the new endpoint back into dwh.cfg with a line-based edit that keeps
comments, layout and unrelated keys, and never writes a secret.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import secrets
import string
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from sparkify.cli.common import echo_json, print_table
from sparkify.config import DEFAULT_CONFIG_FILE, KEYS, TEMPLATE, Settings, load_settings
from sparkify.errors import ConfigError, SparkifyError
from sparkify.infrastructure import Infrastructure

# Approximate on-demand prices in USD per node-hour (us-east-1 and us-west-2, 2025). Managed
# storage, snapshots and data transfer are extra: see https://aws.amazon.com/redshift/pricing/
NODE_PRICES = {
    "dc2.large": 0.25,
    "dc2.8xlarge": 4.80,
    "ra3.large": 0.543,
    "ra3.xlplus": 1.086,
    "ra3.4xlarge": 3.26,
    "ra3.16xlarge": 13.04,
}
RPU_PRICE = 0.375  # Serverless: USD per RPU-hour, billed per second while queries run
CHECKIP_URL = "https://checkip.amazonaws.com"
SECRET_KEYS = {(k.section, k.name) for k in KEYS if k.secret}


@dataclass(frozen=True)
class AwsOptions:
    """The options every ``aws`` command accepts, built once at the CLI boundary."""

    config: str | None
    region: str | None
    quiet: bool
    json: bool

    def settings(self) -> Settings:
        return load_settings(self.config, {("AWS", "REGION"): self.region})

    def say(self, message: str) -> None:
        """Chatter for people: on stderr, silent with --quiet or --json."""
        if not (self.quiet or self.json):
            click.echo(message, err=True)


def aws_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --config/--region/--quiet/--json as ``options``."""

    @click.option("--config", "config", metavar="FILE", help="Config file (default: ./dwh.cfg).")
    @click.option("--region", metavar="NAME", help="AWS region ([AWS] REGION).")
    @click.option("--quiet", "-q", is_flag=True, help="No progress display or chatter.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @functools.wraps(command)
    def wrapper(
        config: str | None, region: str | None, quiet: bool, as_json: bool, **kwargs: Any
    ) -> Any:
        return command(options=AwsOptions(config, region, quiet, as_json), **kwargs)

    return wrapper


# -- what a person supplies --------------------------------------------------------------------
def discover_public_ip(timeout: float = 5.0) -> str | None:
    """This machine's public address as AWS sees it, or ``None`` without internet access."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as response:
            return str(ipaddress.ip_address(response.read(64).decode().strip()))
    except (OSError, ValueError):
        return None


def resolve_cidr(cidr: str | None, allow_anywhere: bool, discover: Callable[[], str | None]) -> str:
    """The network allowed to reach port 5439: the caller's own address by default."""
    if cidr:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"--cidr needs an address or network like 203.0.113.7/32, got {cidr!r}"
            ) from None
        if network.prefixlen == 0 and not allow_anywhere:
            raise ConfigError(
                f"--cidr {network} opens port 5439 to the whole internet; "
                "add --allow-anywhere if you really mean it"
            )
        return str(network)
    if allow_anywhere:
        return "0.0.0.0/0"
    address = discover()
    if address is None:
        raise ConfigError(
            "cannot discover your public IP address (checkip.amazonaws.com is unreachable); "
            "pass --cidr YOUR.PUBLIC.IP/32"
        )
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


_FORBIDDEN = set("'\"\\/@ ")


def check_password(password: str) -> str:
    """Redshift's master password rules, checked before AWS sees the password."""
    problems = []
    if not 8 <= len(password) <= 64:
        problems.append("8 to 64 characters")
    if not (any(c.isupper() for c in password) and any(c.islower() for c in password)):
        problems.append("an upper- and a lower-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("a digit")
    if any(c in _FORBIDDEN or not 33 <= ord(c) <= 126 for c in password):
        problems.append("only printable ASCII without quotes, \\, /, @ or spaces")
    if problems:
        raise ConfigError("the master password needs " + ", ".join(problems))
    return password


def generate_password(length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits + "!#%^*-_=+"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if _valid(password):
            return password


def _valid(password: str) -> bool:
    try:
        check_password(password)
    except ConfigError:
        return False
    return True


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


# -- dwh.cfg ----------------------------------------------------------------------------------
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_ASSIGNMENT = re.compile(r"^(\s*)([^\s#;=:][^=:]*?)\s*([=:])(.*)$")


def update_config_file(path: Path, updates: Mapping[tuple[str, str], str]) -> list[str]:
    """Set keys in place, line by line: comments, order and other keys stay as they are.

    A key missing from its section is added after the section's last line; a missing
    section is appended. A file that does not exist starts from the template. Returns the
    keys written. Secret keys are refused.
    """
    wanted = {(s.upper(), k.upper()): v for (s, k), v in updates.items()}
    for ident, value in wanted.items():
        if ident in SECRET_KEYS or "PASSWORD" in ident[1] or "\n" in value:
            raise SparkifyError(f"refusing to write [{ident[0]}] {ident[1]} to {path}")
    text = path.read_text(encoding="utf-8") if path.exists() else TEMPLATE
    lines = text.splitlines()
    section, section_end, written = "", dict[str, int](), list[str]()
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section = header.group(1).strip().upper()
            section_end[section] = index
            continue
        assignment = _ASSIGNMENT.match(line)
        found = (section, assignment.group(2).strip().upper()) if assignment else None
        if assignment and found in wanted:
            indent, key = assignment.group(1), assignment.group(2).strip()
            lines[index] = f"{indent}{key} = {wanted.pop((section, key.upper()))}".rstrip()
            written.append(f"[{section}] {key}")
        if line.strip() and section:
            section_end[section] = index
    missing: dict[str, list[str]] = {}
    for (section, key), value in wanted.items():
        missing.setdefault(section, []).append(f"{key} = {value}".rstrip())
        written.append(f"[{section}] {key}")
    for section in sorted(missing, key=lambda name: -section_end.get(name, len(lines))):
        if section in section_end:
            at = section_end[section] + 1
            lines[at:at] = missing[section]
        else:
            lines += ["", f"[{section}]", *missing[section]]
    temporary = path.with_name(f".{path.name}.sparkify-tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if path.exists():
        os.chmod(temporary, path.stat().st_mode)
    temporary.replace(path)
    return written


def _config_path(settings: Settings) -> Path:
    return settings.config_file or Path(DEFAULT_CONFIG_FILE)


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
            self.console.print(message, highlight=False, markup=False)
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
            self.status.update(f"{message} ({elapsed:.0f} s)")
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


CostRow = tuple[str, str, int, float | None]  # resource, unit, count, USD per hour


def cluster_cost(name: str, node_type: str, nodes: int) -> CostRow:
    price = NODE_PRICES.get(node_type)
    return (f"cluster {name}", node_type, nodes, None if price is None else round(price * nodes, 3))


def serverless_cost(workgroup: str, rpus: int) -> CostRow:
    return (f"workgroup {workgroup} (while queries run)", "RPU", rpus, round(rpus * RPU_PRICE, 3))


def cost_rows(status: Mapping[str, Any]) -> list[CostRow]:
    """What runs now, from ``Infrastructure.status``."""
    warehouse = status["warehouse"]
    if status["kind"] == "serverless" and warehouse["base_capacity_rpu"]:
        return [serverless_cost(warehouse["name"], int(warehouse["base_capacity_rpu"]))]
    if status["kind"] == "cluster" and warehouse["exists"]:
        nodes = int(warehouse["nodes"] or 1)
        return [cluster_cost(warehouse["name"], warehouse["node_type"], nodes)]
    return []


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
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=1800,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the warehouse to become available.",
)
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
    if ipaddress.ip_network(network).prefixlen == 0:
        click.echo(f"warning: port 5439 will be open to the whole internet ({network})", err=True)
    interactive = sys.stdin.isatty() and not options.json
    configured = settings.get("CLUSTER", "DB_PASSWORD")
    with reporting(options) as reporter:
        password = PasswordSource(configured, interactive, reporter.paused)
        infra = Infrastructure.from_settings(settings, serverless, base_capacity, reporter.log)
        result = infra.up(network, password, timeout, reporter.tick)
    spec = infra.spec
    costs = [
        serverless_cost(spec.workgroup, spec.base_capacity)
        if serverless
        else cluster_cost(spec.identifier, spec.node_type, spec.num_nodes)
    ]
    updates = {
        ("CLUSTER", "HOST"): result.host,
        ("CLUSTER", "DB_PORT"): str(result.port),
        ("IAM_ROLE", "ARN"): result.role_arn,
    }
    for key in ("DB_NAME", "DB_USER"):
        if settings.source("CLUSTER", key) in ("default", "unset"):
            updates[("CLUSTER", key)] = getattr(spec, key.lower())
    path = _config_path(settings)
    written = update_config_file(path, updates)
    report = {
        **result.as_dict(),
        "config_file": str(path),
        "config_written": written,
        "password_generated": password.generated,
        "hourly_usd": sum(usd or 0 for *_, usd in costs),
    }
    if options.json:
        echo_json(report)
        return
    options.say(f"wrote {', '.join(written)} to {path}")
    if not options.quiet:
        print_costs(costs)
        click.echo(f"next: sparkify create-tables --backend redshift --config {path}")


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
        status = Infrastructure.from_settings(settings, serverless, log=reporter.log).status()
    host = settings.get("CLUSTER", "HOST") or None
    warehouse = status["warehouse"]
    costs = cost_rows(status)
    status["config"] = {
        "file": str(settings.config_file or ""),
        "host": host,
        "host_is_live": host is not None and host == warehouse["host"],
    }
    status["hourly_usd"] = sum(usd or 0 for *_, usd in costs)
    if options.json:
        echo_json(status)
        return
    print_table(["resource", "name", "state", "detail"], _status_rows(status), status["region"])
    if host and not status["config"]["host_is_live"]:
        click.echo(f"note: dwh.cfg HOST {host} is not this running warehouse")
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
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=1800,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the deletions to finish.",
)
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
    doomed = _doomed(before)
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
    written = _forget_endpoints(settings, before)
    if options.json:
        echo_json({"deleted": doomed, "config_written": written})
    else:
        options.say("everything sparkify created is gone")


def _doomed(status: dict[str, Any]) -> list[str]:
    """What ``down`` will delete: what exists and carries the sparkify tag."""
    warehouse, doomed = status["warehouse"], []
    if warehouse["exists"] and warehouse["created_by_sparkify"]:
        if status["kind"] == "serverless":
            doomed.append(
                f"Serverless workgroup {warehouse['name']} and namespace {warehouse['namespace']}"
            )
        else:
            doomed.append(f"cluster {warehouse['name']}")
    for kind, found in (("security group", status["security_group"]), ("IAM role", status["role"])):
        if found["exists"] and found["created_by_sparkify"]:
            doomed.append(f"{kind} {found['name']}")
    return doomed


def _forget_endpoints(settings: Settings, before: dict[str, Any]) -> list[str]:
    """Blank HOST and ARN in dwh.cfg when they point at what was just deleted."""
    if settings.config_file is None:
        return []
    updates = {}
    host = before["warehouse"]["host"]
    if host and settings.get("CLUSTER", "HOST") == host:
        updates[("CLUSTER", "HOST")] = ""
    if before["role"]["arn"] and settings.get("IAM_ROLE", "ARN") == before["role"]["arn"]:
        updates[("IAM_ROLE", "ARN")] = ""
    return update_config_file(settings.config_file, updates) if updates else []


COMMANDS = (aws_group,)

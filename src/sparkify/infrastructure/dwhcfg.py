"""Endpoints written back into dwh.cfg with a line-based edit that keeps comments, layout and
unrelated keys, and never writes a secret."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparkify.config import DEFAULT_CONFIG_FILE, KEYS, TEMPLATE, Settings
from sparkify.errors import SparkifyError
from sparkify.infrastructure.spec import Spec, UpResult

SECRET_KEYS = {(k.section, k.name) for k in KEYS if k.secret}
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


def write_endpoint(settings: Settings, spec: Spec, result: UpResult) -> tuple[Path, list[str]]:
    """Point dwh.cfg at the warehouse ``up`` built: HOST, DB_PORT and the role ARN, plus
    DB_NAME and DB_USER when they were left to their defaults. Returns the file and the keys
    written."""
    updates = {
        ("CLUSTER", "HOST"): result.host,
        ("CLUSTER", "DB_PORT"): str(result.port),
        ("IAM_ROLE", "ARN"): result.role_arn,
    }
    for key in ("DB_NAME", "DB_USER"):
        if settings.source("CLUSTER", key) in ("default", "unset"):
            updates[("CLUSTER", key)] = getattr(spec, key.lower())
    path = settings.config_file or Path(DEFAULT_CONFIG_FILE)
    return path, update_config_file(path, updates)


def forget_endpoints(settings: Settings, before: Mapping[str, Any]) -> list[str]:
    """Blank HOST and ARN in dwh.cfg when they point at what was just deleted; ``before`` is
    ``Infrastructure.status`` from before the deletion. Returns the keys written."""
    if settings.config_file is None:
        return []
    updates = {}
    host = before["warehouse"]["host"]
    if host and settings.get("CLUSTER", "HOST") == host:
        updates[("CLUSTER", "HOST")] = ""
    if before["role"]["arn"] and settings.get("IAM_ROLE", "ARN") == before["role"]["arn"]:
        updates[("IAM_ROLE", "ARN")] = ""
    return update_config_file(settings.config_file, updates) if updates else []

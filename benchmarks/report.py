"""Figures, the machine they were measured on, the Rich table and the JSON results."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results")
SCALE_ORDER = ("tiny", "small", "medium", "large")

# Issue 15's targets, in the order of the final table: key -> (target, the scales judging it).
HEADLINES = {
    "duckdb": ("DuckDB, 1M events: sparkify etl <= 1.5x the bare CTAS", "medium"),
    "catalogue": ("~15k song files: <= 2x a plain read-and-decode loop", "small, medium"),
    "memory": ("10M events: peak memory of the process tree <= 2 GiB", "large"),
    "large-time": ("10M events: time <= 12x the 1M run", "medium and large"),
    "postgres": ("PostgreSQL, 1M events: >= 100,000 events/s with checks", "medium"),
    "generator": ("generator: >= 300,000 events/s", "medium"),
}


@dataclass
class Figure:
    """One measured figure, next to the floor or baseline measured in the same run."""

    section: str
    metric: str
    value: float | None
    unit: str
    baseline: str = ""  # what the figure is compared with, and its value
    ratio: float | None = None  # value / baseline (or speed-up; see ``ratio_label``)
    ratio_label: str = ""
    target: str = ""
    met: bool | None = None  # None: no target at this scale
    note: str = ""
    headline: str = ""  # the key in HEADLINES of the issue-15 target this figure answers


@dataclass
class ScaleResult:
    scale: str
    budget_seconds: int
    dataset: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(_memory_bytes() / 1024**3, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            p: _version(p) for p in ("sparkify", "duckdb", "orjson", "psycopg", "moto", "s3fs")
        },
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("events/s", "rows/s", "files/s"):
        return f"{value:,.0f} {unit}"
    if unit == "bytes":
        return f"{value / 1024**2:,.0f} MiB"
    return f"{value:,.3f} {unit}"


def _status(met: bool | None, judged: str = "met", missed: str = "missed") -> str:
    return {True: judged, False: missed, None: "not judged at this scale"}[met]


def headline_rows(documents: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per figure answering a target of HEADLINES, across the scales of
    ``documents`` (ScaleResults as dicts), in the targets' order: target, scale, figure,
    value, floor, ratio, met / missed; a target no figure answers says which scales would."""
    rows: list[tuple[str, ...]] = []
    for key, (target, scales) in HEADLINES.items():
        found = [
            (d["scale"], f) for d in documents for f in d["figures"] if f.get("headline") == key
        ]
        for scale, f in found:
            ratio = (
                f"{f['ratio']:.2f}x {f['ratio_label']}".strip() if f["ratio"] is not None else ""
            )
            value = _number(f["value"], f["unit"])
            rows.append(
                (target, scale, f["metric"], value, f["baseline"], ratio, _status(f["met"]))
            )
        if not found:
            rows.append((target, "-", "not measured", "", "", "", f"needs {scales}"))
    return rows


def load_averages(document: dict[str, Any]) -> str:
    """The 1-minute load average at the end of each section of one scale."""
    loads = document["details"].get("load_average", {})
    return ", ".join(f"{section} {load[0]:.1f}" for section, load in loads.items())


def print_headlines(results: list[ScaleResult], console: Console) -> None:
    """The final table: every target of issue 15 next to its floor, met or missed."""
    documents = [asdict(r) for r in results]
    table = Table(title="issue 15 targets (floors measured in the same run)", title_justify="left")
    for column in ("target", "scale", "figure", "value", "floor / baseline", "ratio", ""):
        table.add_column(column)
    for row in headline_rows(documents):
        status = row[-1].replace("missed", "[red]missed[/]").replace("met", "[green]met[/]")
        table.add_row(*row[:-1], status)
    console.print(table)
    for document in documents:
        console.print(
            f"  load average (1 min) after each section, {document['scale']}: "
            f"{load_averages(document)}"
        )


def print_table(result: ScaleResult, console: Console) -> None:
    table = Table(title=f"scale {result.scale} ({result.seconds:.0f} s)", title_justify="left")
    for column in ("section", "figure", "value", "compared with", "ratio", "target", ""):
        table.add_column(column)
    for f in result.figures:
        ratio = f"{f.ratio:.2f}x {f.ratio_label}".strip() if f.ratio is not None else ""
        status = {True: "[green]met[/]", False: "[red]missed[/]", None: ""}[f.met]
        table.add_row(
            f.section, f.metric, _number(f.value, f.unit), f.baseline, ratio, f.target, status
        )
    console.print(table)
    for section, reason in result.skipped.items():
        console.print(f"  {section}: skipped: {reason}")
    for section, error in result.errors.items():
        console.print(f"  [red]{section}: ERROR[/] {error.splitlines()[0] if error else ''}")


def write_json(results: list[ScaleResult], directory: Path = RESULTS) -> list[Path]:
    """``<scale>-<date>.json`` per scale, and ``latest.json``: the latest result of every scale
    ever run here (the scales of this run replace their earlier entries)."""
    directory.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    info = machine()
    latest_path = directory / "latest.json"
    try:
        latest = json.loads(latest_path.read_text())["scales"]
    except (OSError, ValueError, KeyError, TypeError):
        latest = {}
    written = []
    for result in results:
        document = {"date": today, "machine": info, **asdict(result)}
        path = directory / f"{result.scale}-{today}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
        latest[result.scale] = document
    latest_path.write_text(json.dumps({"scales": latest}, indent=2) + "\n")
    written.append(latest_path)
    return written


def markdown(latest: Path = RESULTS / "latest.json") -> str:
    """The figures of ``latest.json`` as one Markdown table per scale (for docs/performance.md)."""
    scales = json.loads(latest.read_text())["scales"]
    names = sorted(
        scales, key=lambda n: SCALE_ORDER.index(n) if n in SCALE_ORDER else len(SCALE_ORDER)
    )
    documents = [scales[n] for n in names]
    out = ["### Issue 15 targets\n"]
    out.append("| target | scale | figure | value | floor / baseline | ratio | |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    out += ["| " + " | ".join(row) + " |" for row in headline_rows(documents)]
    out.append("")
    out += [
        f"Load average (1 min) after each section, {d['scale']} ({d['date']}): "
        f"{load_averages(d)}.\n"
        for d in documents
    ]
    for doc in documents:
        name = doc["scale"]
        events = doc["dataset"].get("events", 0)
        out.append(f"### {name}: {events:,} events ({doc['date']}, {doc['seconds']:.0f} s)\n")
        out.append("| figure | value | compared with | ratio | target | |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        for f in doc["figures"]:
            ratio = (
                f"{f['ratio']:.2f}x {f['ratio_label']}".strip() if f["ratio"] is not None else ""
            )
            status = {True: "met", False: "**missed**", None: ""}[f["met"]]
            value = _number(f["value"], f["unit"])
            out.append(
                f"| {f['section']}: {f['metric']} | {value} | {f['baseline']} | {ratio} "
                f"| {f['target']} | {status} |"
            )
        for section, reason in doc["skipped"].items():
            out.append(f"\n{section}: skipped: {reason}")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())

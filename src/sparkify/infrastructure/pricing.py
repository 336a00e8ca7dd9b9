"""Approximate hourly cost of what runs, for the tables ``aws up`` and ``aws status`` print."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def hourly_usd(rows: list[CostRow]) -> float:
    """The total of ``rows``; a row of unknown price counts as 0."""
    return sum(usd or 0 for *_, usd in rows)

"""``Infrastructure``: the resource mixins put together as ``up``, ``status`` and ``down``.

``up`` and ``down`` look before they act, so both can be rerun after any partial failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparkify.aws import Aws, aws_session
from sparkify.config import Settings
from sparkify.errors import SparkifyError
from sparkify.infrastructure.cluster import ClusterMixin
from sparkify.infrastructure.iam import RoleMixin
from sparkify.infrastructure.network import SecurityGroupMixin, open_cidrs
from sparkify.infrastructure.pricing import cost_rows, hourly_usd
from sparkify.infrastructure.resources import Log, Tick, say_nothing, tagged
from sparkify.infrastructure.serverless import ServerlessMixin
from sparkify.infrastructure.spec import PORT, Spec, UpResult


class Infrastructure(RoleMixin, SecurityGroupMixin, ClusterMixin, ServerlessMixin):
    """Looks up, creates and deletes the resources of one ``Spec``."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        serverless: bool = False,
        base_capacity: int = 8,
        log: Log = say_nothing,
    ) -> Infrastructure:
        spec = Spec.from_settings(settings, serverless, base_capacity)
        return cls(spec, Aws(aws_session(settings)), log)

    def up(self, cidr: str, password: Callable[[], str], timeout: float, tick: Tick) -> UpResult:
        """Create what is missing, wait until it answers, and say where it is."""
        role_arn = self.ensure_role()
        group_id = self.ensure_group(cidr)
        if self.spec.serverless:
            kind, name = "serverless", self.spec.workgroup
            self.ensure_serverless(role_arn, group_id, password)
            self.wait(f"workgroup {name}", self.workgroup_state, ("AVAILABLE", None), timeout, tick)
            endpoint = (self.find_workgroup() or {}).get("endpoint") or {}
            host, port = endpoint.get("address"), endpoint.get("port", PORT)
        else:
            kind, name = "cluster", self.spec.identifier
            self.ensure_cluster(role_arn, group_id, password)
            self.wait(f"cluster {name}", self.cluster_state, ("available", None), timeout, tick)
            endpoint = (self.find_cluster() or {}).get("Endpoint") or {}
            host, port = endpoint.get("Address"), endpoint.get("Port", PORT)
        if not host:
            raise SparkifyError(f"{kind} {name} vanished while starting; see its events in AWS")
        self.log(f"{kind} {name} is available at {host}:{port}")
        return UpResult(kind, name, str(host), int(port), role_arn, cidr)

    def down(self, final_snapshot: str | None, timeout: float, tick: Tick) -> None:
        """Delete whatever sparkify created and wait until it is gone; safe to rerun."""
        if self.spec.serverless:
            self.delete_serverless(final_snapshot, timeout, tick)
        elif self.delete_cluster(final_snapshot):
            what = f"cluster {self.spec.identifier}"
            self.wait(what, self.cluster_state, (None,), timeout, tick)
            self.log(f"deleted {what}")
        self.delete_group(timeout, tick)
        self.delete_role()

    def status(self) -> dict[str, Any]:
        """What exists and in which state: the role, the warehouse and its security group."""
        spec = self.spec
        role = self.find_role() or {}
        attached, inline = self._policies() if role else ([], [])
        group = self.find_group()
        found: dict[str, Any] = {
            "region": self.aws.region,
            "kind": "serverless" if spec.serverless else "cluster",
            "role": {
                "name": spec.role_name,
                "exists": bool(role),
                "arn": role.get("Arn"),
                "created_by_sparkify": tagged(role.get("Tags")),
                "policies": [*attached, *(f"inline:{p}" for p in inline)],
            },
            "security_group": {
                "name": spec.group_name,
                "exists": group is not None,
                "id": (group or {}).get("GroupId"),
                "port_5439_open_to": open_cidrs(group or {}),
                "created_by_sparkify": tagged((group or {}).get("Tags")),
            },
        }
        if spec.serverless:
            namespace = self.find_namespace() or {}
            workgroup = self.find_workgroup() or {}
            arn = str(workgroup.get("workgroupArn") or namespace.get("namespaceArn") or "")
            found["warehouse"] = {
                "name": spec.workgroup,
                "namespace": spec.namespace,
                "namespace_status": namespace.get("status"),
                "exists": bool(workgroup or namespace),
                "created_by_sparkify": bool(arn) and self.serverless_tagged(arn),
                "status": workgroup.get("status"),
                "host": (workgroup.get("endpoint") or {}).get("address"),
                "base_capacity_rpu": workgroup.get("baseCapacity"),
            }
        else:
            cluster = self.find_cluster() or {}
            endpoint = cluster.get("Endpoint") or {}
            found["warehouse"] = {
                "name": spec.identifier,
                "exists": bool(cluster),
                "status": cluster.get("ClusterStatus"),
                "node_type": cluster.get("NodeType"),
                "nodes": cluster.get("NumberOfNodes"),
                "host": endpoint.get("Address"),
                "port": endpoint.get("Port"),
                "created_by_sparkify": tagged(cluster.get("Tags")),
            }
        return found


def status_report(
    settings: Settings, serverless: bool = False, log: Log = say_nothing
) -> dict[str, Any]:
    """``Infrastructure.status``, whether dwh.cfg points at the running warehouse, and what
    it costs an hour."""
    status = Infrastructure.from_settings(settings, serverless, log=log).status()
    host = settings.get("CLUSTER", "HOST") or None
    status["config"] = {
        "file": str(settings.config_file or ""),
        "host": host,
        "host_is_live": host is not None and host == status["warehouse"]["host"],
    }
    status["hourly_usd"] = hourly_usd(cost_rows(status))
    return status


def deletions(status: dict[str, Any]) -> list[str]:
    """What ``down`` will delete, from ``Infrastructure.status``: what exists and carries the
    sparkify tag."""
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

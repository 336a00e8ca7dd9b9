"""What to build, named and sized from dwh.cfg (``Spec``), and where it ended up (``UpResult``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sparkify.config import Settings
from sparkify.errors import ConfigError

PORT = 5439


@dataclass(frozen=True)
class Spec:
    """The resources, named and sized from dwh.cfg."""

    role_name: str
    identifier: str
    node_type: str
    num_nodes: int
    db_name: str
    db_user: str
    namespace: str
    workgroup: str
    buckets: tuple[str, ...]  # buckets the role may read; none: AmazonS3ReadOnlyAccess
    serverless: bool = False
    base_capacity: int = 8

    @classmethod
    def from_settings(
        cls, settings: Settings, serverless: bool = False, base_capacity: int = 8
    ) -> Spec:
        """``serverless`` is implied when [CLUSTER] HOST is a Serverless endpoint."""
        host = (settings.get("CLUSTER", "HOST") or "").lower()
        serverless = serverless or ".redshift-serverless." in host
        nodes = settings.get("CLUSTER", "NUM_NODES") or "1"
        if not nodes.isdigit() or int(nodes) < 1:
            raise ConfigError(f"[CLUSTER] NUM_NODES must be a whole number >= 1, got {nodes!r}")
        buckets = {
            urlparse(value).netloc
            for name in ("LOG_DATA", "SONG_DATA", "LOG_JSONPATH", "STAGING_PREFIX")
            if (value := settings.get("S3", name)) and value.startswith("s3://")
        }
        return cls(
            role_name=settings.get("IAM_ROLE", "NAME") or "sparkify-redshift-s3-read",
            identifier=settings.get("CLUSTER", "IDENTIFIER") or "sparkify",
            node_type=settings.get("CLUSTER", "NODE_TYPE") or "ra3.large",
            num_nodes=int(nodes),
            db_name=settings.get("CLUSTER", "DB_NAME") or "sparkify",
            db_user=settings.get("CLUSTER", "DB_USER") or "sparkify",
            namespace=settings.get("CLUSTER", "NAMESPACE") or "sparkify",
            workgroup=settings.get("CLUSTER", "WORKGROUP") or "sparkify",
            buckets=tuple(sorted(b for b in buckets if b)),
            serverless=serverless,
            base_capacity=base_capacity,
        )

    @property
    def group_name(self) -> str:
        return f"{self.workgroup if self.serverless else self.identifier}-redshift"


@dataclass
class UpResult:
    kind: str  # "cluster" or "serverless"
    name: str
    host: str
    port: int
    role_arn: str
    cidr: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

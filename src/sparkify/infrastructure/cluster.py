"""The provisioned Redshift cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparkify.errors import SparkifyError
from sparkify.infrastructure.resources import TAG_KEY, TAG_VALUE, AwsResources
from sparkify.infrastructure.spec import PORT


class ClusterMixin(AwsResources):
    """Looks up, creates and deletes the cluster of ``spec.identifier``."""

    def find_cluster(self) -> dict[str, Any] | None:
        clusters = self._find(
            "redshift", "describe_clusters", "ClusterNotFound", "Clusters",
            ClusterIdentifier=self.spec.identifier,
        )  # fmt: skip
        return clusters[0] if clusters else None

    def cluster_state(self) -> str | None:
        cluster = self.find_cluster()
        return cluster["ClusterStatus"] if cluster else None

    def ensure_cluster(self, role_arn: str, group_id: str, password: Callable[[], str]) -> None:
        spec, cluster = self.spec, self.find_cluster()
        if cluster is None:
            sizing: dict[str, Any] = {"ClusterType": "single-node"}
            if spec.num_nodes > 1:
                sizing = {"ClusterType": "multi-node", "NumberOfNodes": spec.num_nodes}
            self._create(
                "redshift", "create_cluster", ClusterIdentifier=spec.identifier,
                NodeType=spec.node_type, DBName=spec.db_name, MasterUsername=spec.db_user,
                MasterUserPassword=password(), IamRoles=[role_arn], VpcSecurityGroupIds=[group_id],
                PubliclyAccessible=True, Encrypted=True, Port=PORT,
                Tags=[{"Key": TAG_KEY, "Value": TAG_VALUE}], **sizing,
            )  # fmt: skip
            self.log(f"creating cluster {spec.identifier} ({spec.num_nodes} x {spec.node_type})")
            return
        if cluster["ClusterStatus"] == "deleting":
            raise SparkifyError(
                f"cluster {spec.identifier} is being deleted; wait until sparkify aws status "
                "no longer shows it, then run sparkify aws up again"
            )
        self.log(f"cluster {spec.identifier} exists ({cluster['ClusterStatus']})")
        if role_arn not in [r["IamRoleArn"] for r in cluster.get("IamRoles", [])]:
            self.aws.call(
                "redshift", "modify_cluster_iam_roles", ClusterIdentifier=spec.identifier,
                AddIamRoles=[role_arn],
            )  # fmt: skip
            self.log(f"attached role {spec.role_name} to the cluster")
        groups = [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])]
        if groups and group_id not in groups:
            self.aws.call(
                "redshift", "modify_cluster", ClusterIdentifier=spec.identifier,
                VpcSecurityGroupIds=[*groups, group_id],
            )  # fmt: skip
            self.log(f"added security group {group_id} to the cluster")

    def delete_cluster(self, final_snapshot: str | None) -> bool:
        cluster, name = self.find_cluster(), self.spec.identifier
        if cluster is None or not self._ours(cluster.get("Tags"), f"cluster {name}"):
            return False
        if cluster["ClusterStatus"] != "deleting":
            snapshot: dict[str, Any] = {"SkipFinalClusterSnapshot": True}
            if final_snapshot:
                snapshot = {
                    "SkipFinalClusterSnapshot": False,
                    "FinalClusterSnapshotIdentifier": final_snapshot,
                }
            self.aws.call(
                "redshift", "delete_cluster", ("ClusterNotFound",), ClusterIdentifier=name,
                **snapshot,
            )  # fmt: skip
            kept = f", keeping final snapshot {final_snapshot}" if final_snapshot else ""
            self.log(f"deleting cluster {name}{kept}")
        return True

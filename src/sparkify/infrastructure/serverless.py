"""Redshift Serverless: a namespace (the data) and a workgroup (the compute)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparkify.infrastructure.network import default_vpc
from sparkify.infrastructure.resources import TAG_KEY, TAG_VALUE, AwsResources, Tick, tagged
from sparkify.infrastructure.spec import PORT


class ServerlessMixin(AwsResources):
    """Looks up, creates and deletes ``spec.namespace`` and ``spec.workgroup``."""

    def find_namespace(self) -> dict[str, Any] | None:
        namespace: dict[str, Any] | None = self._find(
            "redshift-serverless", "get_namespace", "ResourceNotFoundException", "namespace",
            namespaceName=self.spec.namespace,
        )  # fmt: skip
        return namespace

    def find_workgroup(self) -> dict[str, Any] | None:
        workgroup: dict[str, Any] | None = self._find(
            "redshift-serverless", "get_workgroup", "ResourceNotFoundException", "workgroup",
            workgroupName=self.spec.workgroup,
        )  # fmt: skip
        return workgroup

    def namespace_state(self) -> str | None:
        namespace = self.find_namespace()
        return namespace["status"] if namespace else None

    def workgroup_state(self) -> str | None:
        workgroup = self.find_workgroup()
        return workgroup["status"] if workgroup else None

    def serverless_tagged(self, arn: str) -> bool:
        tags = self._find(
            "redshift-serverless", "list_tags_for_resource", "ResourceNotFoundException", "tags",
            resourceArn=arn,
        )  # fmt: skip
        return tagged(tags)

    def _serverless_ours(self, arn: str, what: str) -> bool:
        if self.serverless_tagged(arn):
            return True
        return self._ours([], what)

    def ensure_serverless(self, role_arn: str, group_id: str, password: Callable[[], str]) -> None:
        spec, service = self.spec, "redshift-serverless"
        tags = [{"key": TAG_KEY, "value": TAG_VALUE}]
        namespace = self.find_namespace()
        if namespace is None:
            self._create(
                service, "create_namespace", namespaceName=spec.namespace, dbName=spec.db_name,
                adminUsername=spec.db_user, adminUserPassword=password(), iamRoles=[role_arn],
                defaultIamRoleArn=role_arn, tags=tags,
            )  # fmt: skip
            self.log(f"created Serverless namespace {spec.namespace}")
        elif not any(role_arn in entry for entry in namespace.get("iamRoles", [])):
            self.aws.call(
                service, "update_namespace", namespaceName=spec.namespace, iamRoles=[role_arn],
                defaultIamRoleArn=role_arn,
            )  # fmt: skip
            self.log(f"attached role {spec.role_name} to namespace {spec.namespace}")
        if self.find_workgroup() is not None:
            self.log(f"Serverless workgroup {spec.workgroup} exists")
            return
        in_vpc = [{"Name": "vpc-id", "Values": [default_vpc(self.aws)]}]
        subnets = self.aws.call("ec2", "describe_subnets", Filters=in_vpc)["Subnets"]
        self.aws.call(
            service, "create_workgroup", workgroupName=spec.workgroup,
            namespaceName=spec.namespace, baseCapacity=spec.base_capacity,
            publiclyAccessible=True, port=PORT, securityGroupIds=[group_id],
            subnetIds=[s["SubnetId"] for s in subnets], tags=tags,
        )  # fmt: skip
        self.log(f"creating Serverless workgroup {spec.workgroup} ({spec.base_capacity} RPU)")

    def delete_serverless(self, final_snapshot: str | None, timeout: float, tick: Tick) -> None:
        spec, service, gone = self.spec, "redshift-serverless", ("ResourceNotFoundException",)
        what = f"Serverless workgroup {spec.workgroup}"
        workgroup = self.find_workgroup()
        if workgroup and self._serverless_ours(workgroup["workgroupArn"], what):
            if workgroup["status"] != "DELETING":
                self.aws.call(service, "delete_workgroup", gone, workgroupName=spec.workgroup)
                self.log(f"deleting {what}")
            self.wait(what, self.workgroup_state, (None,), timeout, tick)
        what = f"Serverless namespace {spec.namespace}"
        namespace = self.find_namespace()
        if namespace and self._serverless_ours(namespace["namespaceArn"], what):
            if namespace["status"] != "DELETING":
                snapshot = {"finalSnapshotName": final_snapshot} if final_snapshot else {}
                self.aws.call(
                    service, "delete_namespace", gone, namespaceName=spec.namespace, **snapshot
                )
                self.log(f"deleting {what}")
            self.wait(what, self.namespace_state, (None,), timeout, tick)

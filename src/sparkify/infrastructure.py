"""Amazon Redshift infrastructure: an IAM role Redshift assumes to read the bucket, a
provisioned cluster (or a Serverless namespace and workgroup), and a security group that
lets one address reach port 5439.

``up`` and ``down`` look before they act, so both can be rerun after any partial failure.
Every AWS call goes through ``Aws.call``, which turns boto errors into one-line sparkify
errors in one place (``aws_error``). Resources are tagged ``created-by=sparkify`` and ``down``
deletes only tagged resources. boto3 is imported lazily: the CLI imports this module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sparkify.config import Settings
from sparkify.errors import ConfigError, SparkifyError

TAG_KEY, TAG_VALUE = "created-by", "sparkify"
PORT = 5439
S3_READ_ONLY_ARN = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
INLINE_POLICY = "sparkify-s3-read"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {
                "Service": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
            },
            "Action": "sts:AssumeRole",
        }
    ],
}
Tick = Callable[[str, float], None]
Log = Callable[[str], None]


def _ignore(*args: object) -> None:
    """Default log and progress hook: say nothing."""


# -- errors ----------------------------------------------------------------------------------
# AWS error code -> (error class, message). One table for every call sparkify makes.
_ERROR_TABLE: tuple[tuple[str, type[SparkifyError], str], ...] = (
    (
        "AuthFailure ExpiredToken ExpiredTokenException InvalidAccessKeyId InvalidClientTokenId "
        "RequestExpired SignatureDoesNotMatch UnrecognizedClientException",
        ConfigError,
        "AWS rejected the credentials ({code}) on {action}: check AWS_PROFILE or `aws configure`",
    ),
    (
        "AccessDenied AccessDeniedException AccessDeniedFault UnauthorizedAccess "
        "UnauthorizedOperation",
        SparkifyError,
        "insufficient permissions: {action} was denied; allow it for your AWS user or role "
        "({message})",
    ),
    (
        "ClusterQuotaExceeded LimitExceeded LimitExceededException "
        "NumberOfNodesPerClusterLimitExceeded NumberOfNodesQuotaExceeded "
        "RulesPerSecurityGroupLimitExceeded SecurityGroupLimitExceeded "
        "ServiceQuotaExceededException",
        SparkifyError,
        "AWS quota reached on {action} ({code}: {message}); delete unused resources or request "
        "an increase in the Service Quotas console",
    ),
    (
        "InsufficientClusterCapacity",
        SparkifyError,
        "AWS has no capacity for this node type now ({message}); try another [CLUSTER] "
        "NODE_TYPE or region, or retry later",
    ),
    (
        "ClusterAlreadyExists ClusterSnapshotAlreadyExists EntityAlreadyExists",
        SparkifyError,
        "name taken ({action}): {message}; choose another name in dwh.cfg",
    ),
    (
        "InvalidParameterCombination InvalidParameterValue MalformedPolicyDocument "
        "ValidationError ValidationException",
        ConfigError,
        "AWS refused {action} ({code}): {message}",
    ),
    (
        "RequestLimitExceeded Throttling ThrottlingException",
        SparkifyError,
        "AWS is throttling {action}; wait a minute and run it again",
    ),
)
_ERRORS = {code: (cls, text) for codes, cls, text in _ERROR_TABLE for code in codes.split()}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def aws_error(exc: Exception, action: str) -> SparkifyError:
    """One clear line for a boto error raised by ``action`` (``iam:CreateRole``)."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return ConfigError(
            "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, boto.NoRegionError):
        return ConfigError("no AWS region: set [AWS] REGION in dwh.cfg or SPARKIFY_AWS_REGION")
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return SparkifyError(f"cannot reach AWS for {action}: {_one_line(exc)}")
    if not isinstance(exc, boto.ClientError):
        return SparkifyError(f"{action} failed: {_one_line(exc)}")
    code = error_code(exc)
    message = _one_line(exc.response.get("Error", {}).get("Message", "")) or code
    cls, text = _ERRORS.get(code, (SparkifyError, "{action} failed ({code}): {message}"))
    return cls(text.format(action=action, code=code, message=message))


# -- clients ---------------------------------------------------------------------------------
def aws_session(settings: Settings) -> Any:
    """A boto3 session for [AWS] REGION; credentials from [AWS] KEY/SECRET or the AWS chain."""
    import boto3

    key, secret = settings.get("AWS", "KEY"), settings.get("AWS", "SECRET")
    if bool(key) != bool(secret):
        raise ConfigError("set both [AWS] KEY and SECRET, or neither (use the AWS chain)")
    return boto3.Session(
        aws_access_key_id=key or None,
        aws_secret_access_key=secret or None,
        region_name=settings.get("AWS", "REGION") or "us-west-2",
    )


class Aws:
    """boto3 clients of one session; every call goes through ``call``."""

    def __init__(
        self,
        session: Any,
        endpoints: dict[str, str | None] | None = None,
        region: str | None = None,
    ) -> None:
        self.session = session
        self.endpoints = {k: v for k, v in (endpoints or {}).items() if v}
        self.region = region or str(session.region_name)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoints.get(service)
            )
        return self._clients[service]

    def call(
        self, service: str, operation: str, missing: tuple[str, ...] = (), **params: Any
    ) -> Any:
        """Run ``operation``; ``None`` when AWS answers with one of the ``missing`` codes."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(service)
        action = f"{service}:{client.meta.method_to_api_mapping.get(operation, operation)}"
        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            if error_code(exc) in missing:
                return None
            raise aws_error(exc, action) from None
        except BotoCoreError as exc:
            raise aws_error(exc, action) from None


# -- what to build ---------------------------------------------------------------------------
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


def read_policy(buckets: tuple[str, ...]) -> dict[str, Any]:
    """Read-only access to exactly these buckets."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets],
            },
        ],
    }


def _tagged(tags: list[dict[str, str]] | None) -> bool:
    """Tags as IAM, EC2 and Redshift write them (Key/Value) or Serverless (key/value)."""
    for tag in tags or []:
        if (tag.get("Key") or tag.get("key")) == TAG_KEY:
            return (tag.get("Value") or tag.get("value")) == TAG_VALUE
    return False


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


class Infrastructure:
    """Looks up, creates and deletes the resources of one ``Spec``."""

    poll_seconds = 15.0  # between state checks while waiting

    def __init__(self, spec: Spec, aws: Aws, log: Log = _ignore) -> None:
        self.spec = spec
        self.aws = aws
        self.log = log
        self.new_role = False  # created by this call: IAM needs a moment to propagate

    def _create(self, service: str, operation: str, **params: Any) -> None:
        """Create a warehouse; a role made seconds ago may not be valid in Redshift yet."""
        early = ("InvalidParameterValue", "ValidationException")
        for _ in range(5 if self.new_role else 0):
            if self.aws.call(service, operation, early, **params) is not None:
                return
            time.sleep(self.poll_seconds / 3)
        self.aws.call(service, operation, **params)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        serverless: bool = False,
        base_capacity: int = 8,
        log: Log = _ignore,
    ) -> Infrastructure:
        spec = Spec.from_settings(settings, serverless, base_capacity)
        return cls(spec, Aws(aws_session(settings)), log)

    def _find(self, service: str, operation: str, missing: str, key: str, **params: Any) -> Any:
        found = self.aws.call(service, operation, (missing,), **params)
        return found[key] if found else None

    def wait(
        self, what: str, probe: Callable[[], str | None], done: tuple[str | None, ...],
        timeout: float, tick: Tick,
    ) -> str | None:  # fmt: skip
        """Poll ``probe`` until its state is one of ``done``, showing progress through ``tick``."""
        started = time.monotonic()
        while (state := probe()) not in done:
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise SparkifyError(
                    f"timed out after {timeout:.0f} s waiting for {what} (still "
                    f"{state or 'absent'}); AWS carries on: rerun the command to wait again"
                )
            tick(f"{what}: {state or 'absent'}", elapsed)
            time.sleep(max(0.0, min(self.poll_seconds, timeout - elapsed)))
        return state

    # -- IAM role -----------------------------------------------------------------------------
    def find_role(self) -> dict[str, Any] | None:
        role: dict[str, Any] | None = self._find(
            "iam", "get_role", "NoSuchEntity", "Role", RoleName=self.spec.role_name
        )
        return role

    def ensure_role(self) -> str:
        role = self.find_role()
        if role is None:
            role = self.aws.call(
                "iam",
                "create_role",
                RoleName=self.spec.role_name,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="Lets Redshift read the sparkify source and staging buckets",
                Tags=[{"Key": TAG_KEY, "Value": TAG_VALUE}],
            )["Role"]
            self.log(f"created IAM role {self.spec.role_name}")
            self.new_role = True
        else:
            self.log(f"IAM role {self.spec.role_name} exists")
        self._grant_read()
        return str(role["Arn"])

    def _policies(self) -> tuple[list[str], list[str]]:
        name = self.spec.role_name
        attached = self.aws.call("iam", "list_attached_role_policies", RoleName=name)
        inline = self.aws.call("iam", "list_role_policies", RoleName=name)
        return [p["PolicyArn"] for p in attached["AttachedPolicies"]], inline["PolicyNames"]

    def _grant_read(self) -> None:
        """A scoped inline read policy when the buckets are known, else AmazonS3ReadOnlyAccess."""
        iam, name, buckets = "iam", self.spec.role_name, self.spec.buckets
        attached, inline = self._policies()
        if buckets:
            document = json.dumps(read_policy(buckets))
            self.aws.call(
                iam, "put_role_policy", RoleName=name, PolicyName=INLINE_POLICY,
                PolicyDocument=document,
            )  # fmt: skip
            if S3_READ_ONLY_ARN in attached:
                self.aws.call(iam, "detach_role_policy", RoleName=name, PolicyArn=S3_READ_ONLY_ARN)
            self.log(f"role may read s3://{', s3://'.join(buckets)}")
            return
        if S3_READ_ONLY_ARN not in attached:
            self.aws.call(iam, "attach_role_policy", RoleName=name, PolicyArn=S3_READ_ONLY_ARN)
        if INLINE_POLICY in inline:
            self.aws.call(iam, "delete_role_policy", RoleName=name, PolicyName=INLINE_POLICY)
        self.log("role has AmazonS3ReadOnlyAccess (no s3:// bucket in [S3] to scope it to)")

    def delete_role(self) -> None:
        role, name, gone = self.find_role(), self.spec.role_name, ("NoSuchEntity",)
        if role is None or not self._ours(role.get("Tags"), f"IAM role {name}"):
            return
        attached, inline = self._policies()
        for arn in attached:
            self.aws.call("iam", "detach_role_policy", gone, RoleName=name, PolicyArn=arn)
        for policy in inline:
            self.aws.call("iam", "delete_role_policy", gone, RoleName=name, PolicyName=policy)
        profiles = self.aws.call("iam", "list_instance_profiles_for_role", RoleName=name)
        for profile in profiles["InstanceProfiles"]:
            self.aws.call(
                "iam", "remove_role_from_instance_profile", gone,
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name,
            )  # fmt: skip
        self.aws.call("iam", "delete_role", gone, RoleName=name)
        self.log(f"deleted IAM role {name}")

    def _ours(self, tags: list[dict[str, str]] | None, what: str) -> bool:
        if not _tagged(tags):
            self.log(f"{what} was not created by sparkify (no {TAG_KEY} tag); left in place")
            return False
        return True

    # -- security group -----------------------------------------------------------------------
    def _default_vpc(self) -> str:
        only_default = [{"Name": "isDefault", "Values": ["true"]}]
        vpcs = self.aws.call("ec2", "describe_vpcs", Filters=only_default)["Vpcs"]
        if not vpcs:
            raise SparkifyError(
                f"no default VPC in {self.aws.region}; create one with "
                "`aws ec2 create-default-vpc` and run sparkify aws up again"
            )
        return str(vpcs[0]["VpcId"])

    def find_group(self) -> dict[str, Any] | None:
        by_name = [{"Name": "group-name", "Values": [self.spec.group_name]}]
        groups = self.aws.call("ec2", "describe_security_groups", Filters=by_name)
        return groups["SecurityGroups"][0] if groups["SecurityGroups"] else None

    def ensure_group(self, cidr: str) -> str:
        name, group = self.spec.group_name, self.find_group()
        if group is None:
            tags = [
                {"ResourceType": "security-group", "Tags": [{"Key": TAG_KEY, "Value": TAG_VALUE}]}
            ]
            group = self.aws.call(
                "ec2", "create_security_group", GroupName=name, VpcId=self._default_vpc(),
                Description="sparkify: Redshift port 5439 from allowed addresses",
                TagSpecifications=tags,
            )  # fmt: skip
            self.log(f"created security group {name} ({group['GroupId']})")
        v6 = ":" in cidr
        permission = {
            "IpProtocol": "tcp",
            "FromPort": PORT,
            "ToPort": PORT,
            "Ipv6Ranges" if v6 else "IpRanges": [
                {"CidrIpv6" if v6 else "CidrIp": cidr, "Description": "sparkify aws up"}
            ],
        }
        added = self.aws.call(
            "ec2", "authorize_security_group_ingress", ("InvalidPermission.Duplicate",),
            GroupId=group["GroupId"], IpPermissions=[permission],
        )  # fmt: skip
        self.log(f"port {PORT} {'opened' if added else 'already open'} to {cidr}")
        return str(group["GroupId"])

    def delete_group(self, timeout: float, tick: Tick) -> None:
        group = self.find_group()
        if group is None or not self._ours(
            group.get("Tags"), f"security group {group['GroupName']}"
        ):
            return
        group_id, name = group["GroupId"], group["GroupName"]
        rules = [p for p in group.get("IpPermissions", []) if p.get("FromPort") == PORT]
        if rules:
            self.aws.call(
                "ec2", "revoke_security_group_ingress", ("InvalidPermission.NotFound",),
                GroupId=group_id, IpPermissions=rules,
            )  # fmt: skip
            self.log(f"removed the port {PORT} ingress rules of {name}")

        def delete() -> str | None:  # the network interfaces of a deleted cluster linger a while
            missing = ("DependencyViolation", "InvalidGroup.NotFound")
            done = self.aws.call("ec2", "delete_security_group", missing, GroupId=group_id)
            return None if done is not None or self.find_group() is None else "in use"

        self.wait(f"security group {name}", delete, (None,), timeout, tick)
        self.log(f"deleted security group {name}")

    @staticmethod
    def cidrs(group: dict[str, Any]) -> list[str]:
        found = []
        for permission in group.get("IpPermissions", []):
            if permission.get("FromPort") == PORT:
                found += [r["CidrIp"] for r in permission.get("IpRanges", [])]
                found += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
        return found

    # -- provisioned cluster ------------------------------------------------------------------
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

    # -- Serverless ---------------------------------------------------------------------------
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
        return _tagged(tags)

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
        in_vpc = [{"Name": "vpc-id", "Values": [self._default_vpc()]}]
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

    # -- the three commands -------------------------------------------------------------------
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
                "created_by_sparkify": _tagged(role.get("Tags")),
                "policies": [*attached, *(f"inline:{p}" for p in inline)],
            },
            "security_group": {
                "name": spec.group_name,
                "exists": group is not None,
                "id": (group or {}).get("GroupId"),
                "port_5439_open_to": self.cidrs(group or {}),
                "created_by_sparkify": _tagged((group or {}).get("Tags")),
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
                "created_by_sparkify": _tagged(cluster.get("Tags")),
            }
        return found

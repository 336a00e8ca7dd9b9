"""Amazon Redshift infrastructure: an IAM role Redshift assumes to read the bucket, a
provisioned cluster (or a Serverless namespace and workgroup), and a security group that
lets one address reach port 5439.

``Infrastructure`` (``lifecycle``) is made of one mixin per resource (``iam``, ``network``,
``cluster``, ``serverless``) over ``resources.AwsResources``. ``up`` and ``down`` look before
they act, so both can be rerun after any partial failure. Every AWS call goes through
``Aws.call`` of the one AWS adapter (``sparkify.aws``: session, region rule, and the mapping
of boto errors into one-line sparkify errors). Resources are tagged ``created-by=sparkify``
and ``down`` deletes only tagged resources. boto3 is imported lazily: the CLI imports this package.
"""

from sparkify.infrastructure.dwhcfg import forget_endpoints, update_config_file, write_endpoint
from sparkify.infrastructure.iam import INLINE_POLICY, S3_READ_ONLY_ARN, TRUST_POLICY, read_policy
from sparkify.infrastructure.lifecycle import Infrastructure, deletions, status_report
from sparkify.infrastructure.network import discover_public_ip, open_to_everyone, resolve_cidr
from sparkify.infrastructure.passwords import check_password, generate_password
from sparkify.infrastructure.pricing import (
    CostRow,
    cluster_cost,
    cost_rows,
    hourly_usd,
    serverless_cost,
)
from sparkify.infrastructure.resources import TAG_KEY, TAG_VALUE, Log, Tick
from sparkify.infrastructure.spec import PORT, Spec, UpResult

__all__ = [
    "INLINE_POLICY",
    "PORT",
    "S3_READ_ONLY_ARN",
    "TAG_KEY",
    "TAG_VALUE",
    "TRUST_POLICY",
    "CostRow",
    "Infrastructure",
    "Log",
    "Spec",
    "Tick",
    "UpResult",
    "check_password",
    "cluster_cost",
    "cost_rows",
    "deletions",
    "discover_public_ip",
    "forget_endpoints",
    "generate_password",
    "hourly_usd",
    "open_to_everyone",
    "read_policy",
    "resolve_cidr",
    "serverless_cost",
    "status_report",
    "update_config_file",
    "write_endpoint",
]

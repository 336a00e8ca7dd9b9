"""The IAM role Redshift assumes to read the source and staging buckets."""

from __future__ import annotations

import json
from typing import Any

from sparkify.infrastructure.resources import TAG_KEY, TAG_VALUE, AwsResources

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


class RoleMixin(AwsResources):
    """Looks up, creates and deletes the role of ``spec.role_name``."""

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

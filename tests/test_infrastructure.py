"""`sparkify aws up | status | down` against moto: no AWS account, no network.

moto plays IAM, EC2 and Redshift in-process. It has no Redshift Serverless, so ``Serverless``
below keeps namespaces and workgroups in memory, answering through botocore's ``before-call``
hook: requests are still validated against the real API model. The same hook injects AWS
errors (quota, access denied) into single calls. One moto world serves the whole module
(starting and resetting moto costs seconds); each test names its own resources.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.loaders import create_loader
from click.testing import CliRunner
from conftest import run_cli
from moto import mock_aws

from sparkify import aws as aws_adapter
from sparkify import infrastructure
from sparkify.aws import aws_error
from sparkify.cli import cli
from sparkify.errors import ConfigError, SparkifyError
from sparkify.infrastructure import Infrastructure, lifecycle, network

REGION = "us-west-2"
MODELS = create_loader()
PASSWORD = "Sparkify-Test-Pw1"
CONFIG = """\
# My Redshift settings -- keep this comment
[WAREHOUSE]
BACKEND = redshift

[CLUSTER]
HOST =
DB_NAME = sparkify
DB_USER = awsuser
; a semicolon comment
DB_PORT = 5432
IDENTIFIER = {name}
NODE_TYPE = ra3.large
NUM_NODES = 2
NAMESPACE = {name}-ns
WORKGROUP = {name}-wg

[IAM_ROLE]
ARN =
NAME = {name}-role
# DB_PASSWORD = never here

[S3]
LOG_DATA = s3://udacity-dend/log_data
SONG_DATA = s3://udacity-dend/song_data
LOG_JSONPATH = s3://udacity-dend/log_json_path.json
STAGING_PREFIX = s3://my-staging/sparkify/
ANONYMOUS = false

[AWS]
REGION = us-west-2
"""
_CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "SPARKIFY_CONFIG",
    "SPARKIFY_CLUSTER_DB_PASSWORD",
    "SPARKIFY_AWS_REGION",
    "SPARKIFY_AWS_KEY",
    "SPARKIFY_AWS_SECRET",
)


def _response(status: int, body: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://aws.invalid", status, {}, None), body


class Serverless:
    """Redshift Serverless in memory; a workgroup stays CREATING for ``creating_polls`` looks."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.workgroups: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self.creating_polls = 0
        self.calls: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        self.calls.append(model.name)
        body = json.loads(params["body"] or b"{}")
        handler = getattr(self, re.sub(r"(?<!^)([A-Z])", r"_\1", model.name).lower())
        try:
            return _response(200, handler(body))
        except KeyError as exc:
            error = {"Code": "ResourceNotFoundException", "Message": f"{exc.args[0]} not found"}
            return _response(400, {"Error": error})

    def create_namespace(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["namespaceName"]
        arn = f"arn:aws:redshift-serverless:{REGION}:123456789012:namespace/{name}"
        self.tags[arn] = body.get("tags", [])
        roles = [f"IamRole(applyStatus=in-sync, iamRoleArn={r})" for r in body["iamRoles"]]
        self.namespaces[name] = {
            "namespaceName": name,
            "namespaceArn": arn,
            "status": "AVAILABLE",
            "dbName": body["dbName"],
            "adminUsername": body["adminUsername"],
            "iamRoles": roles,
        }
        return {"namespace": self.namespaces[name]}

    def get_namespace(self, body: dict[str, Any]) -> dict[str, Any]:
        namespace = self.namespaces[body["namespaceName"]]
        if namespace["status"] == "DELETING":
            del self.namespaces[body["namespaceName"]]
        return {"namespace": namespace}

    def delete_namespace(self, body: dict[str, Any]) -> dict[str, Any]:
        self.namespaces[body["namespaceName"]]["status"] = "DELETING"
        return {"namespace": self.namespaces[body["namespaceName"]]}

    def create_workgroup(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["workgroupName"]
        arn = f"arn:aws:redshift-serverless:{REGION}:123456789012:workgroup/{name}"
        self.tags[arn] = body.get("tags", [])
        self.workgroups[name] = {**body, "workgroupArn": arn, "status": "CREATING"}
        return {"workgroup": self.workgroups[name]}

    def get_workgroup(self, body: dict[str, Any]) -> dict[str, Any]:
        workgroup = self.workgroups[body["workgroupName"]]
        if workgroup["status"] == "DELETING":
            del self.workgroups[body["workgroupName"]]
        elif workgroup["status"] == "CREATING":
            if self.creating_polls > 0:
                self.creating_polls -= 1
            else:
                address = (
                    f"{workgroup['workgroupName']}.1234.{REGION}.redshift-serverless.amazonaws.com"
                )
                workgroup.update(status="AVAILABLE", endpoint={"address": address, "port": 5439})
        return {"workgroup": workgroup}

    def delete_workgroup(self, body: dict[str, Any]) -> dict[str, Any]:
        self.workgroups[body["workgroupName"]]["status"] = "DELETING"
        return {"workgroup": self.workgroups[body["workgroupName"]]}

    def list_tags_for_resource(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"tags": self.tags[body["resourceArn"]]}


class FakeAws:
    """What a test can arrange: the Serverless fake and errors injected into single calls."""

    def __init__(self, name: str) -> None:
        self.name = name  # prefix of this test's resources
        self.role = f"{name}-role"
        self.config = CONFIG.format(name=name)
        self.serverless = Serverless()
        self.failures: dict[str, list[tuple[str, str]]] = {}

    def fail_next(self, event: str, code: str, message: str) -> None:
        """Make the next call of ``event`` (``redshift.CreateCluster``) fail with ``code``."""
        self.failures.setdefault(event, []).append((code, message))

    def hook(self, session: Any) -> None:
        session.events.register("before-call", self._answer)

    def _answer(self, model: Any, params: dict[str, Any], event_name: str, **kwargs: Any) -> Any:
        """An injected failure first; then the Serverless fake; else moto answers."""
        call = event_name.removeprefix("before-call.")
        pending = self.failures.get(call)
        if pending:
            code, message = pending.pop(0)
            return _response(400, {"Error": {"Code": code, "Message": message}})
        if call.startswith("redshift-serverless."):
            return self.serverless(model, params)
        return None

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def moto_world() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in _CLEARED:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            yield


@pytest.fixture
def aws(moto_world: None, monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    monkeypatch.setattr(network, "CHECKIP_URL", "http://127.0.0.1:9/")  # never the internet
    monkeypatch.setattr(Infrastructure, "poll_seconds", 0.0)
    fake = FakeAws(f"t{uuid.uuid4().hex[:10]}")
    real_session = aws_adapter.aws_session

    def session(settings: Any) -> Any:
        made = real_session(settings)
        made._session.register_component("data_loader", MODELS)  # parse API models once
        fake.hook(made)
        return made

    monkeypatch.setattr(lifecycle, "aws_session", session)
    return fake


@pytest.fixture
def config(aws: FakeAws, tmp_path: Path) -> Path:
    path = tmp_path / "dwh.cfg"
    path.write_text(aws.config, encoding="utf-8")
    return path


def role_exists(aws: FakeAws) -> bool:
    return any(r["RoleName"] == aws.role for r in aws.client("iam").list_roles()["Roles"])


def up(config: Path, *args: str, password: str | None = PASSWORD) -> Any:
    env = {"SPARKIFY_CLUSTER_DB_PASSWORD": password} if password else {}
    return run_cli("aws", "up", "--config", str(config), "--cidr", "203.0.113.7", *args, env=env)


def status(config: Path, *args: str) -> dict[str, Any]:
    result = run_cli("aws", "status", "--config", str(config), "--json", *args)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def changed_lines(before: str, after: str) -> set[str]:
    return set(after.splitlines()) - set(before.splitlines())


# -- up ---------------------------------------------------------------------------------------
def test_up_creates_role_network_rule_and_cluster_and_writes_config(
    aws: FakeAws, config: Path
) -> None:
    result = up(config)
    assert result.exit_code == 0, result.stderr
    iam, ec2, redshift = aws.client("iam"), aws.client("ec2"), aws.client("redshift")

    role = iam.get_role(RoleName=aws.role)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert "redshift.amazonaws.com" in trust["Statement"][0]["Principal"]["Service"]
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="sparkify-s3-read")
    document = policy["PolicyDocument"]
    actions = {a for s in document["Statement"] for a in s["Action"]}
    resources = {r for s in document["Statement"] for r in s["Resource"]}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}
    assert resources == {
        "arn:aws:s3:::udacity-dend",
        "arn:aws:s3:::udacity-dend/*",
        "arn:aws:s3:::my-staging",
        "arn:aws:s3:::my-staging/*",
    }

    cluster = redshift.describe_clusters(ClusterIdentifier=aws.name)["Clusters"][0]
    assert (cluster["NodeType"], cluster["NumberOfNodes"]) == ("ra3.large", 2)
    assert (cluster["MasterUsername"], cluster["DBName"]) == ("awsuser", "sparkify")
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [role["Arn"]]
    group_id = cluster["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["GroupName"] == f"{aws.name}-redshift"
    assert [
        (p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]
    ] == [(5439, ["203.0.113.7/32"])]

    text = config.read_text()
    assert changed_lines(aws.config, text) == {
        f"HOST = {cluster['Endpoint']['Address']}",
        "DB_PORT = 5439",
        f"ARN = {role['Arn']}",
    }
    assert len(text.splitlines()) == len(aws.config.splitlines())  # comments and keys all kept
    assert PASSWORD not in text
    assert PASSWORD not in result.stdout + result.stderr
    assert "USD/hour" in result.stdout and "1.086" in result.stdout  # 2 x ra3.large


def test_up_twice_reuses_everything(aws: FakeAws, config: Path) -> None:
    assert up(config).exit_code == 0
    first = config.read_text()
    again = up(config, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["kind"] == "cluster"
    assert config.read_text() == first
    clusters = aws.client("redshift").describe_clusters()["Clusters"]
    assert [c["ClusterIdentifier"] for c in clusters].count(aws.name) == 1
    groups = aws.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{aws.name}-redshift"]}]
    )["SecurityGroups"]
    assert len(groups) == 1 and len(groups[0]["IpPermissions"][0]["IpRanges"]) == 1


def test_up_without_a_password_generates_one_and_prints_it_once(aws: FakeAws, config: Path) -> None:
    result = up(config, "--json", password=None)
    assert result.exit_code == 0, result.stderr
    shown = re.findall(r"master password \(shown once[^:]*: (\S+)", result.stderr)
    assert len(shown) == 1
    infrastructure.check_password(shown[0])
    assert json.loads(result.stdout)["password_generated"] is True
    assert shown[0] not in result.stdout
    assert shown[0] not in config.read_text()


def test_up_rejects_a_bad_password_before_creating_anything(aws: FakeAws, config: Path) -> None:
    result = up(config, password="short")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the master password needs 8 to 64 characters")
    assert not role_exists(aws)


def test_up_never_opens_the_port_to_everyone_without_the_flag(aws: FakeAws, config: Path) -> None:
    refused = run_cli("aws", "up", "--config", str(config), "--cidr", "0.0.0.0/0")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: --cidr 0.0.0.0/0 opens port 5439 to the whole internet; "
        "add --allow-anywhere if you really mean it\n"
    )
    allowed = up(config, "--allow-anywhere", "--cidr", "0.0.0.0/0")
    assert allowed.exit_code == 0, allowed.stderr
    assert "warning: port 5439 will be open to the whole internet" in allowed.stderr


def test_up_requires_cidr_when_the_public_ip_cannot_be_discovered(
    aws: FakeAws, config: Path
) -> None:
    result = run_cli(
        "aws", "up", "--config", str(config), env={"SPARKIFY_CLUSTER_DB_PASSWORD": PASSWORD}
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot discover your public IP address (checkip.amazonaws.com is unreachable); "
        "pass --cidr YOUR.PUBLIC.IP/32\n"
    )
    assert not role_exists(aws)


def test_up_without_s3_buckets_grants_the_managed_read_only_policy(
    aws: FakeAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS-managed policies cost seconds to load: only this test's own moto account has them.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111122223333")
    config = tmp_path / "dwh.cfg"
    config.write_text(
        f"[S3]\nLOG_DATA = sample/log_data\nSONG_DATA = sample/song_data\n\n"
        f"[IAM_ROLE]\nNAME = {aws.role}\n\n[CLUSTER]\nIDENTIFIER = {aws.name}\n"
    )
    assert up(config).exit_code == 0
    attached = aws.client("iam").list_attached_role_policies(RoleName=aws.role)
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["AmazonS3ReadOnlyAccess"]
    text = config.read_text()
    assert text.startswith("[S3]\nLOG_DATA = sample/log_data\nSONG_DATA = sample/song_data\n\n")
    assert f"[CLUSTER]\nIDENTIFIER = {aws.name}\nHOST = {aws.name}." in text
    assert "DB_PORT = 5439\nDB_NAME = sparkify\nDB_USER = sparkify\n" in text  # defaults used


# -- partial failures -------------------------------------------------------------------------
def test_refused_cluster_leaves_the_role_and_a_rerun_completes(aws: FakeAws, config: Path) -> None:
    aws.fail_next("redshift.CreateCluster", "ClusterQuotaExceeded", "You have reached\n the limit.")
    failed = up(config)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == (
        "error: AWS quota reached on redshift:CreateCluster (ClusterQuotaExceeded: You have "
        "reached the limit.); delete unused resources or request an increase in the Service "
        "Quotas console"
    )
    assert role_exists(aws)
    assert not status(config)["warehouse"]["exists"]
    assert config.read_text() == aws.config  # nothing written for a warehouse that isn't there

    rerun = up(config)
    assert rerun.exit_code == 0, rerun.stderr
    assert status(config)["warehouse"]["status"] == "available"


def test_down_after_a_partial_up_removes_what_exists(aws: FakeAws, config: Path) -> None:
    aws.fail_next("redshift.CreateCluster", "InsufficientClusterCapacity", "No capacity.")
    assert up(config).exit_code == 1
    result = run_cli("aws", "down", "--config", str(config), "--yes")
    assert result.exit_code == 0, result.stderr
    after = status(config)
    assert not after["role"]["exists"] and not after["security_group"]["exists"]


def test_access_denied_names_the_failing_action(aws: FakeAws, config: Path) -> None:
    message = "User: arn:aws:iam::123456789012:user/me is not authorized to perform: iam:CreateRole"
    aws.fail_next("iam.CreateRole", "AccessDenied", message)
    result = up(config)
    assert result.exit_code == 2  # a permission to grant: the setup must change
    assert result.stderr == (
        "error: insufficient permissions: iam:CreateRole was denied; allow it for your AWS user "
        f"or role ({message})\n"
    )


def test_missing_credentials_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, config: Path, tmp_path: Path
) -> None:
    for name in (*_CLEARED, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    result = run_cli("aws", "status", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no AWS credentials found: run `aws configure`, set AWS_PROFILE, or export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
    )


@pytest.mark.parametrize(
    ("code", "kind", "start"),
    [
        (
            "InvalidClientTokenId",
            ConfigError,
            "AWS rejected the credentials (InvalidClientTokenId)",
        ),
        ("UnauthorizedOperation", ConfigError, "insufficient permissions: ec2:X was denied"),
        ("NumberOfNodesQuotaExceeded", SparkifyError, "AWS quota reached on ec2:X"),
        ("ClusterAlreadyExists", SparkifyError, "name taken (ec2:X): m"),
        ("InvalidParameterValue", ConfigError, "AWS refused ec2:X (InvalidParameterValue): m"),
        ("Throttling", SparkifyError, "AWS is throttling ec2:X"),
        ("SomethingNew", SparkifyError, "ec2:X failed (SomethingNew): m"),
    ],
)
def test_aws_errors_map_to_one_line(code: str, kind: type[SparkifyError], start: str) -> None:
    error = aws_error(ClientError({"Error": {"Code": code, "Message": "m"}}, "X"), "ec2:X")
    assert type(error) is kind
    assert str(error).startswith(start) and "\n" not in str(error)
    assert type(aws_error(NoCredentialsError(), "ec2:X")) is ConfigError


# -- status and down --------------------------------------------------------------------------
def test_status_shows_nothing_then_everything(aws: FakeAws, config: Path) -> None:
    before = status(config)
    assert not before["role"]["exists"] and not before["warehouse"]["exists"]
    assert before["hourly_usd"] == 0 and before["config"]["host_is_live"] is False
    assert up(config).exit_code == 0
    after = status(config)
    assert after["warehouse"]["status"] == "available" and after["warehouse"]["nodes"] == 2
    assert after["config"]["host_is_live"] is True
    assert after["security_group"]["port_5439_open_to"] == ["203.0.113.7/32"]
    assert after["hourly_usd"] == pytest.approx(1.086)
    table = run_cli("aws", "status", "--config", str(config))
    assert table.exit_code == 0 and "available" in table.stdout
    assert aws.serverless.calls == []  # a cluster user needs no Serverless permissions


def test_down_deletes_everything_keeps_a_snapshot_and_is_safe_to_rerun(
    aws: FakeAws, config: Path
) -> None:
    assert up(config).exit_code == 0
    snapshot = f"{aws.name}-final"
    result = run_cli("aws", "down", "--config", str(config), "--yes", "--final-snapshot", snapshot)
    assert result.exit_code == 0, result.stderr
    snapshots = aws.client("redshift").describe_cluster_snapshots(ClusterIdentifier=aws.name)
    assert [s["SnapshotIdentifier"] for s in snapshots["Snapshots"]] == [snapshot]
    after = status(config)
    assert not after["warehouse"]["exists"] and not after["role"]["exists"]
    assert not after["security_group"]["exists"]
    assert config.read_text() == aws.config.replace("DB_PORT = 5432", "DB_PORT = 5439")
    rerun = run_cli("aws", "down", "--config", str(config), "--yes")
    assert rerun.exit_code == 0 and "nothing to delete" in rerun.stderr


def test_down_asks_first(aws: FakeAws, config: Path) -> None:
    assert up(config).exit_code == 0
    declined = CliRunner().invoke(cli, ["aws", "down", "--config", str(config)], input="n\n")
    assert declined.exit_code == 1
    assert declined.stderr.endswith(
        "error: cancelled, nothing was deleted (--yes skips this question)\n"
    )
    assert status(config)["warehouse"]["exists"]
    accepted = CliRunner().invoke(cli, ["aws", "down", "--config", str(config)], input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert not status(config)["warehouse"]["exists"]


def test_down_leaves_what_sparkify_did_not_create(aws: FakeAws, config: Path) -> None:
    aws.client("redshift").create_cluster(
        ClusterIdentifier=aws.name, NodeType="dc2.large", MasterUsername="admin",
        MasterUserPassword=PASSWORD, ClusterType="single-node",
    )  # fmt: skip
    trust = json.dumps(infrastructure.TRUST_POLICY)
    aws.client("iam").create_role(RoleName=aws.role, AssumeRolePolicyDocument=trust)
    result = run_cli("aws", "down", "--config", str(config), "--yes")
    assert result.exit_code == 0, result.stderr
    assert "nothing to delete" in result.stderr
    after = status(config)
    assert after["warehouse"]["exists"] and after["role"]["exists"]
    assert not after["warehouse"]["created_by_sparkify"]


# -- Serverless -------------------------------------------------------------------------------
def test_serverless_up_waits_for_the_workgroup_and_down_removes_it(
    aws: FakeAws, config: Path
) -> None:
    aws.serverless.creating_polls = 2
    result = up(config, "--serverless", "--base-capacity", "16")
    assert result.exit_code == 0, result.stderr
    assert f"waiting for workgroup {aws.name}-wg: CREATING" in result.stderr
    namespace = aws.serverless.namespaces[f"{aws.name}-ns"]
    role_arn = aws.client("iam").get_role(RoleName=aws.role)["Role"]["Arn"]
    assert namespace["adminUsername"] == "awsuser" and role_arn in namespace["iamRoles"][0]
    workgroup = aws.serverless.workgroups[f"{aws.name}-wg"]
    assert workgroup["baseCapacity"] == 16 and workgroup["publiclyAccessible"] is True
    group = aws.client("ec2").describe_security_groups(GroupIds=workgroup["securityGroupIds"])
    assert group["SecurityGroups"][0]["GroupName"] == f"{aws.name}-wg-redshift"
    host = workgroup["endpoint"]["address"]
    assert f"HOST = {host}" in config.read_text()
    assert status(config)["hourly_usd"] == pytest.approx(16 * 0.375)

    down = run_cli("aws", "down", "--config", str(config), "--yes")
    assert down.exit_code == 0, down.stderr
    assert aws.serverless.workgroups == {} and aws.serverless.namespaces == {}
    after = status(config, "--serverless")  # HOST is blank now, so the flag says which
    assert after["kind"] == "serverless" and not after["warehouse"]["exists"]
    assert not after["security_group"]["exists"] and not after["role"]["exists"]


def test_waiting_past_the_timeout_fails_clearly_and_a_rerun_resumes(
    aws: FakeAws, config: Path
) -> None:
    aws.serverless.creating_polls = 5
    result = up(config, "--serverless", "--timeout", "0")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: timed out after 0 s waiting for workgroup {aws.name}-wg (still CREATING); AWS "
        "carries on: rerun the command to wait again"
    )
    assert status(config)["kind"] == "cluster"  # HOST was never written: nothing implies it
    assert status(config, "--serverless")["warehouse"]["status"] == "CREATING"
    assert up(config, "--serverless").exit_code == 0


def test_down_serverless_cleans_up_after_a_partial_up(aws: FakeAws, config: Path) -> None:
    aws.fail_next("redshift-serverless.CreateWorkgroup", "ServiceQuotaExceededException", "Max.")
    failed = up(config, "--serverless")
    assert (
        failed.exit_code == 1
        and "AWS quota reached on redshift-serverless:CreateWorkgroup" in failed.stderr
    )
    assert list(aws.serverless.namespaces) == [f"{aws.name}-ns"]
    down = run_cli("aws", "down", "--config", str(config), "--serverless", "--yes")
    assert down.exit_code == 0, down.stderr
    assert aws.serverless.namespaces == {} and not role_exists(aws)


# -- the pieces -------------------------------------------------------------------------------
def test_config_rewrite_keeps_layout_adds_missing_keys_and_refuses_secrets(tmp_path: Path) -> None:
    path = tmp_path / "dwh.cfg"
    path.write_text(CONFIG)  # the raw template: {name} placeholders are just text here
    os.chmod(path, 0o600)
    written = infrastructure.update_config_file(
        path,
        {("cluster", "host"): "h.example", ("S3", "NEW_KEY"): "v", ("EXTRA", "K"): "1"},
    )
    assert sorted(written) == ["[CLUSTER] HOST", "[EXTRA] K", "[S3] NEW_KEY"]
    text = path.read_text()
    assert "ANONYMOUS = false\nNEW_KEY = v\n\n[AWS]" in text
    assert text.endswith("[AWS]\nREGION = us-west-2\n\n[EXTRA]\nK = 1\n")
    assert changed_lines(CONFIG, text) == {"HOST = h.example", "NEW_KEY = v", "[EXTRA]", "K = 1"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for secret in (("CLUSTER", "DB_PASSWORD"), ("AWS", "SECRET"), ("WAREHOUSE", "DSN")):
        with pytest.raises(SparkifyError, match="refusing to write"):
            infrastructure.update_config_file(path, {secret: "x"})


def test_passwords_follow_redshift_rules() -> None:
    for _ in range(20):
        assert infrastructure.check_password(infrastructure.generate_password())
    with pytest.raises(ConfigError, match="a digit, only printable ASCII"):
        infrastructure.check_password("NoDigits/AtAll")


def test_resolve_cidr_prefers_the_flag_then_the_discovered_address() -> None:
    assert infrastructure.resolve_cidr("203.0.113.7", False, lambda: None) == "203.0.113.7/32"
    assert infrastructure.resolve_cidr(None, False, lambda: "198.51.100.2") == "198.51.100.2/32"
    assert infrastructure.resolve_cidr(None, False, lambda: "2001:db8::1") == "2001:db8::1/128"
    assert infrastructure.resolve_cidr(None, True, lambda: None) == "0.0.0.0/0"
    with pytest.raises(ConfigError, match="--cidr needs an address"):
        infrastructure.resolve_cidr("not-an-ip", False, lambda: None)


def test_a_new_role_gets_time_to_reach_redshift(aws: FakeAws, config: Path) -> None:
    message = "The IAM role must delegate access to an Amazon Redshift account."
    aws.fail_next("redshift.CreateCluster", "InvalidParameterValue", message)
    result = up(config)
    assert result.exit_code == 0, result.stderr
    assert status(config)["warehouse"]["status"] == "available"

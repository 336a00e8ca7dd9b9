"""Who may reach port 5439: the allowed network (CIDR) and the security group that admits it."""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable
from typing import Any

from sparkify.aws import Aws
from sparkify.errors import ConfigError, SparkifyError
from sparkify.infrastructure.resources import TAG_KEY, TAG_VALUE, AwsResources, Tick
from sparkify.infrastructure.spec import PORT

CHECKIP_URL = "https://checkip.amazonaws.com"


def discover_public_ip(timeout: float = 5.0) -> str | None:
    """This machine's public address as AWS sees it, or ``None`` without internet access."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as response:
            return str(ipaddress.ip_address(response.read(64).decode().strip()))
    except (OSError, ValueError):
        return None


def open_to_everyone(cidr: str) -> bool:
    """Whether ``cidr`` is the whole internet (0.0.0.0/0 or ::/0)."""
    return ipaddress.ip_network(cidr).prefixlen == 0


def resolve_cidr(cidr: str | None, allow_anywhere: bool, discover: Callable[[], str | None]) -> str:
    """The network allowed to reach port 5439: the caller's own address by default."""
    if cidr:
        try:
            network = str(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"--cidr needs an address or network like 203.0.113.7/32, got {cidr!r}"
            ) from None
        if open_to_everyone(network) and not allow_anywhere:
            raise ConfigError(
                f"--cidr {network} opens port 5439 to the whole internet; "
                "add --allow-anywhere if you really mean it"
            )
        return network
    if allow_anywhere:
        return "0.0.0.0/0"
    address = discover()
    if address is None:
        raise ConfigError(
            "cannot discover your public IP address (checkip.amazonaws.com is unreachable); "
            "pass --cidr YOUR.PUBLIC.IP/32"
        )
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def default_vpc(aws: Aws) -> str:
    """The id of the region's default VPC, where the warehouse and its group live."""
    only_default = [{"Name": "isDefault", "Values": ["true"]}]
    vpcs = aws.call("ec2", "describe_vpcs", Filters=only_default)["Vpcs"]
    if not vpcs:
        raise SparkifyError(
            f"no default VPC in {aws.region}; create one with "
            "`aws ec2 create-default-vpc` and run sparkify aws up again"
        )
    return str(vpcs[0]["VpcId"])


def open_cidrs(group: dict[str, Any]) -> list[str]:
    """The networks a security group admits to port 5439."""
    found = []
    for permission in group.get("IpPermissions", []):
        if permission.get("FromPort") == PORT:
            found += [r["CidrIp"] for r in permission.get("IpRanges", [])]
            found += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
    return found


class SecurityGroupMixin(AwsResources):
    """Looks up, creates and deletes the security group of ``spec.group_name``."""

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
                "ec2", "create_security_group", GroupName=name, VpcId=default_vpc(self.aws),
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

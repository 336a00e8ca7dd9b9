"""boto3 clients of one session; every AWS call goes through ``Aws.call``.

boto3 is imported lazily: the CLI imports this package.
"""

from __future__ import annotations

from typing import Any

from sparkify.config import Settings
from sparkify.errors import ConfigError
from sparkify.infrastructure.errors import aws_error, error_code


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

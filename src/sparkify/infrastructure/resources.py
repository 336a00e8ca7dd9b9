"""What every resource mixin shares: the spec, the AWS clients, the log, the sparkify tag,
and waiting for AWS to reach a state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sparkify.aws import Aws
from sparkify.errors import SparkifyError
from sparkify.infrastructure.spec import Spec

TAG_KEY, TAG_VALUE = "created-by", "sparkify"
Tick = Callable[[str, float], None]
Log = Callable[[str], None]


def say_nothing(*args: object) -> None:
    """Default log and progress hook: say nothing."""


def tagged(tags: list[dict[str, str]] | None) -> bool:
    """Tags as IAM, EC2 and Redshift write them (Key/Value) or Serverless (key/value)."""
    for tag in tags or []:
        if (tag.get("Key") or tag.get("key")) == TAG_KEY:
            return (tag.get("Value") or tag.get("value")) == TAG_VALUE
    return False


class AwsResources:
    """The base of the resource mixins ``Infrastructure`` is made of."""

    poll_seconds = 15.0  # between state checks while waiting

    def __init__(self, spec: Spec, aws: Aws, log: Log = say_nothing) -> None:
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

    def _find(self, service: str, operation: str, missing: str, key: str, **params: Any) -> Any:
        found = self.aws.call(service, operation, (missing,), **params)
        return found[key] if found else None

    def _ours(self, tags: list[dict[str, str]] | None, what: str) -> bool:
        if not tagged(tags):
            self.log(f"{what} was not created by sparkify (no {TAG_KEY} tag); left in place")
            return False
        return True

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

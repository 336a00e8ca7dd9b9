"""boto errors as one-line sparkify errors: one table for every AWS call sparkify makes."""

from __future__ import annotations

from sparkify.errors import ConfigError, SparkifyError

# AWS error code -> (error class, message).
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
    """The AWS error code of a botocore ``ClientError`` (``NoSuchEntity``), else ``""``."""
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

"""The one AWS adapter: settings, sessions, clients and errors for every AWS call sparkify makes.

Three parts of sparkify talk to AWS: reading raw files from S3 (``sources.objectstore``, through
s3fs), the Redshift backend (staging uploads, IAM database credentials) and provisioning
(``infrastructure``). All three take from here:

- **One region rule** (``resolve_region``): ``[AWS] REGION`` when it is set in dwh.cfg or as
  ``SPARKIFY_AWS_REGION``; otherwise the AWS chain's region (``AWS_REGION``,
  ``AWS_DEFAULT_REGION``, the profile's ``region``); otherwise ``us-west-2``, the documented
  default of ``[AWS] REGION``. S3 reads, staging uploads, COPY's ``REGION`` and provisioning
  all use it. Only Redshift's own API calls for a cluster or workgroup endpoint go to the
  region in the endpoint's host name, where the cluster is.
- **One endpoint and credentials rule** (``AwsOptions``): ``[S3] ENDPOINT_URL`` (else
  ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``) for S3; ``[AWS] KEY`` and ``SECRET``
  together, or neither and the standard credential chain.
- **One session factory** (``aws_session``) and one client cache (``Aws``).
- **One error mapping** (``aws_error``): every boto, s3fs or network error becomes a one-line
  ``SparkifyError`` whose class gives the exit code. The settings or the environment must
  change (credentials, permissions, region, endpoint, a missing bucket or object): exit 2.
  AWS failed at run time (throttling or server errors that outlasted the retries, quotas,
  capacity, a name taken, anything unforeseen): exit 1. Secrets never appear in a message.

boto3 is imported lazily: the CLI imports this module through ``infrastructure``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import IncompleteRead
from typing import Any
from urllib.parse import urlparse

from sparkify.config import Settings
from sparkify.errors import ConfigError, SourceError, SparkifyError, needs

DEFAULT_REGION = "us-west-2"  # the default of [AWS] REGION
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def resolve_region(settings: Settings) -> str:
    """[AWS] REGION when set explicitly; else the AWS chain's region; else us-west-2."""
    if settings.source("AWS", "REGION") not in ("default", "unset"):
        explicit = settings.get("AWS", "REGION")
        if explicit:
            return explicit
    import botocore.session

    chain = botocore.session.Session().get_config_variable("region")
    return str(chain or settings.get("AWS", "REGION") or DEFAULT_REGION)


@dataclass(frozen=True)
class AwsOptions:
    """How to reach AWS (or an S3-compatible store), resolved once from the settings."""

    region: str
    s3_endpoint: str | None = None
    anonymous: bool = False
    key: str | None = None
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] = os.environ
    ) -> AwsOptions:
        endpoint = (
            settings.get("S3", "ENDPOINT_URL")
            or environ.get("AWS_ENDPOINT_URL_S3")
            or environ.get("AWS_ENDPOINT_URL")
            or None
        )
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise ConfigError(f"[S3] ENDPOINT_URL must be an http:// or https:// URL: {endpoint}")
        key, secret = settings.get("AWS", "KEY") or None, settings.get("AWS", "SECRET") or None
        if bool(key) != bool(secret):
            raise ConfigError("set both [AWS] KEY and [AWS] SECRET, or neither")
        return cls(resolve_region(settings), endpoint, _anonymous(settings), key, secret)

    def s3fs_options(self, concurrency: int) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem``; retries are left to the caller."""
        options: dict[str, Any] = {
            "anon": self.anonymous,
            "endpoint_url": self.s3_endpoint,
            "client_kwargs": {"region_name": self.region},
            "config_kwargs": {
                "retries": {"total_max_attempts": 1},
                "max_pool_connections": concurrency,
            },
        }
        if self.key and not self.anonymous:
            options.update(key=self.key, secret=self.secret)
        return options

    def scrub(self, message: str) -> str:
        """Belt and braces: no secret value may leave in a message."""
        secrets = (
            self.secret,
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
            os.environ.get("AWS_SESSION_TOKEN"),
        )
        for secret in secrets:
            if secret and len(secret) >= 4:
                message = message.replace(secret, "***")
        return message


def _anonymous(settings: Settings) -> bool:
    value = (settings.get("S3", "ANONYMOUS") or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"[S3] ANONYMOUS must be true or false, got {value!r}")
    return value in _TRUE


def aws_session(settings: Settings) -> Any:
    """A boto3 session in the resolved region; credentials from [AWS] KEY/SECRET or the chain."""
    with needs("aws", "talking to AWS"):
        import boto3

    options = AwsOptions.from_settings(settings)
    return boto3.Session(
        aws_access_key_id=options.key,
        aws_secret_access_key=options.secret,
        region_name=options.region,
    )


class Aws:
    """boto3 clients of one session; every call goes through ``call``.

    ``endpoints`` and ``regions`` override the session's per service (``{"s3": url}``).
    """

    def __init__(
        self,
        session: Any,
        endpoints: Mapping[str, str | None] | None = None,
        regions: Mapping[str, str | None] | None = None,
    ) -> None:
        self.session = session
        self.endpoints = {k: v for k, v in (endpoints or {}).items() if v}
        self.regions = {k: v for k, v in (regions or {}).items() if v}
        self._clients: dict[str, Any] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, regions: Mapping[str, str | None] | None = None
    ) -> Aws:
        """Clients for ``settings``: the S3 endpoint of [S3] ENDPOINT_URL or the environment."""
        endpoint = AwsOptions.from_settings(settings).s3_endpoint
        return cls(aws_session(settings), {"s3": endpoint}, regions)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,
                region_name=self.regions.get(service, self.region),
                endpoint_url=self.endpoints.get(service),
            )
        return self._clients[service]

    def call(
        self, service: str, operation: str, missing: tuple[str, ...] = (), **params: Any
    ) -> Any:
        """Run ``operation``; ``None`` when AWS answers with one of the ``missing`` codes."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(service)
        action = f"{service}:{client.meta.method_to_api_mapping.get(operation, operation)}"
        endpoint = self.endpoints.get(service)
        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            if error_code(exc) in missing:
                return None
            raise aws_error(exc, action, endpoint=endpoint) from None
        except BotoCoreError as exc:
            raise aws_error(exc, action, endpoint=endpoint) from None


# -- errors -------------------------------------------------------------------------------
# AWS error codes (or HTTP statuses, when a response has no code) by kind of failure.
_CODES: dict[str, str] = {
    "bad_credentials": "AuthFailure ExpiredToken ExpiredTokenException InvalidAccessKeyId "
    "InvalidClientTokenId InvalidToken RequestExpired SignatureDoesNotMatch "
    "TokenRefreshRequired UnrecognizedClientException",
    "denied": "AccessDenied AccessDeniedException AccessDeniedFault AccountProblem "
    "AllAccessDisabled UnauthorizedAccess UnauthorizedOperation 403",
    "no_bucket": "NoSuchBucket",
    "no_object": "NoSuchKey 404",
    "wrong_region": "PermanentRedirect AuthorizationHeaderMalformed 301",
    "throttled": "SlowDown Throttling ThrottlingException RequestLimitExceeded 429",
    "server": "RequestTimeout InternalError ServiceUnavailable 500 502 503 504",
    "quota": "ClusterQuotaExceeded LimitExceeded LimitExceededException "
    "NumberOfNodesPerClusterLimitExceeded NumberOfNodesQuotaExceeded "
    "RulesPerSecurityGroupLimitExceeded SecurityGroupLimitExceeded "
    "ServiceQuotaExceededException",
    "capacity": "InsufficientClusterCapacity",
    "taken": "ClusterAlreadyExists ClusterSnapshotAlreadyExists EntityAlreadyExists",
    "invalid": "InvalidParameterCombination InvalidParameterValue MalformedPolicyDocument "
    "ValidationError ValidationException",
}
_KIND_OF_CODE = {code: kind for kind, codes in _CODES.items() for code in codes.split()}
_TRANSIENT = ("throttled", "server", "unreachable", "network")

# Kind -> (error class, which gives the exit code; message about an API action; message
# about reading or listing a source URL, "" for the generic one). Fields: {action}, {url},
# {verb} (read or list), {code}, {message}, {tries} (" after N attempts"), {where}.
_GENERIC = (
    SparkifyError,
    "{action} failed{tries} ({code}): {message}",
    "cannot {verb} {url}{tries}: {code}{message}",
)
_MESSAGES: dict[str, tuple[type[SparkifyError], str, str]] = {
    "no_credentials": (
        ConfigError,
        "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "no AWS credentials found for {url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, use an instance role, or set [S3] ANONYMOUS = true for a "
        "public bucket",
    ),
    "credential_load": (
        ConfigError,
        "cannot load AWS credentials for {action}: {code}",
        "cannot load AWS credentials for {url}: {code}",
    ),
    "no_region": (
        ConfigError,
        "no AWS region: set [AWS] REGION in dwh.cfg or SPARKIFY_AWS_REGION",
        "no AWS region for {url}: set [AWS] REGION in dwh.cfg or SPARKIFY_AWS_REGION",
    ),
    "bad_credentials": (
        ConfigError,
        "AWS rejected the credentials ({code}) on {action}: check AWS_PROFILE or `aws configure`",
        "credentials rejected for {url} ({code}): check AWS_PROFILE or the access key",
    ),
    "denied": (
        ConfigError,
        "insufficient permissions: {action} was denied; allow it for your AWS user or role "
        "({message})",
        "access denied: cannot {verb} {url} with the credentials in use; for a public bucket "
        "set [S3] ANONYMOUS = true",
    ),
    "denied_anonymous": (
        ConfigError,
        "{action} was denied to anonymous access ([S3] ANONYMOUS = true)",
        "access denied: cannot {verb} {url} anonymously ([S3] ANONYMOUS = true); the bucket "
        "is not public: unset it to use credentials",
    ),
    "no_bucket": (
        SourceError,
        "no such bucket on {action} ({message}): check the bucket name and the endpoint",
        "no such bucket: {url} (check the bucket name and the endpoint)",
    ),
    "no_object": (
        SourceError,
        "{action} failed ({code}): {message}",
        "object disappeared while loading: {url} (run the etl again)",
    ),
    "wrong_region": (
        ConfigError,
        "{action} went to another region ({code}): set [AWS] REGION to the bucket's region",
        "{url} is in another region ({code}): set [AWS] REGION to the bucket's region",
    ),
    "unreachable": (
        ConfigError,
        "cannot reach {where} for {action}{tries}: check the endpoint and the network ({message})",
        "cannot reach {where} for {url}{tries}: check [S3] ENDPOINT_URL (or AWS_ENDPOINT_URL) "
        "and the network",
    ),
    "throttled": (
        SparkifyError,
        "AWS is throttling {action}{tries}; wait a minute and run it again",
        "",
    ),
    "quota": (
        SparkifyError,
        "AWS quota reached on {action} ({code}: {message}); delete unused resources or request "
        "an increase in the Service Quotas console",
        "",
    ),
    "capacity": (
        SparkifyError,
        "AWS has no capacity for this node type now ({message}); try another [CLUSTER] "
        "NODE_TYPE or region, or retry later",
        "",
    ),
    "taken": (
        SparkifyError,
        "name taken ({action}): {message}; choose another name in dwh.cfg",
        "",
    ),
    "invalid": (ConfigError, "AWS refused {action} ({code}): {message}", ""),
}


@dataclass(frozen=True)
class Failure:
    """A classified AWS failure: its kind, AWS error code (or exception name) and message."""

    kind: str
    code: str
    message: str

    @property
    def transient(self) -> bool:
        """Throttling, server errors, timeouts and dropped connections: worth a retry."""
        return self.kind in _TRANSIENT


def network_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import HTTPClientError

    errors: tuple[type[BaseException], ...] = (
        HTTPClientError,
        IncompleteRead,
        asyncio.TimeoutError,
        TimeoutError,
        ConnectionError,
    )
    try:  # s3fs's network errors; without the s3 extra, nothing can raise them
        from aiohttp import ClientError as AiohttpError
        from fsspec.exceptions import FSTimeoutError
    except ImportError:
        return errors
    return (*errors, AiohttpError, FSTimeoutError)


def _client_error(exc: BaseException) -> Any:
    """The botocore ``ClientError`` behind ``exc``, also when s3fs made it an ``OSError``."""
    from botocore.exceptions import ClientError

    for candidate in (exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, ClientError):
            return candidate
    return None


def error_code(exc: BaseException) -> str:
    """The AWS error code (or, without one, the HTTP status) behind an error, else ``""``."""
    error = _client_error(exc)
    if error is None:
        return ""
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code or status or "")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def classify(exc: BaseException) -> Failure:
    """What kind of failure ``exc`` is, from its class and its AWS error code."""
    from botocore import exceptions as boto

    code = error_code(exc)
    error = _client_error(exc)
    if error is not None:
        message = _one_line(error.response.get("Error", {}).get("Message") or "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        kind = _KIND_OF_CODE.get(code)
        if kind is None:
            kind = "throttled" if status == 429 else "server" if status >= 500 else "other"
        return Failure(kind, code, message)
    name = type(exc).__name__
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    message = _one_line(text.splitlines()[0]) if text else ""
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return Failure("no_credentials", name, message)
    if isinstance(exc, boto.CredentialRetrievalError):
        return Failure("credential_load", name, message)
    if isinstance(exc, boto.NoRegionError):
        return Failure("no_region", name, message)
    if isinstance(exc, boto.ConnectionError):  # endpoint unreachable, connect timeout
        return Failure("unreachable", name, message)
    if isinstance(exc, PermissionError):
        return Failure("denied", name, message)
    if isinstance(exc, FileNotFoundError):
        return Failure("no_object", name, message)
    networked = network_errors()
    if isinstance(exc, networked) or isinstance(exc.__cause__, networked):
        return Failure("network", name, message)
    return Failure("other", name, message)


def aws_error(
    exc: BaseException,
    action: str,
    *,
    url: str | None = None,
    verb: str = "read",
    anonymous: bool = False,
    endpoint: str | None = None,
    attempts: int = 1,
    options: AwsOptions | None = None,
) -> SparkifyError:
    """One clear line for a failure of ``action`` (``iam:CreateRole``), or of reading or
    listing (``verb``) the source ``url``; its class gives the exit code."""
    failure = classify(exc)
    kind = failure.kind
    if kind == "denied" and anonymous:
        kind = "denied_anonymous"
    if url is not None and verb == "list" and kind == "no_object":
        kind = "no_bucket"  # listing a prefix of a bucket that does not exist
    cls, about_action, about_url = _MESSAGES.get(kind, _GENERIC)
    template = about_action if url is None else about_url or _GENERIC[2]
    message = failure.message or failure.code
    if template == _GENERIC[2]:
        message = f": {failure.message}" if failure.message else ""
    text = template.format(
        action=action,
        url=url,
        verb=verb,
        code=failure.code or type(exc).__name__,
        message=message,
        tries=f" after {attempts} attempts" if attempts > 1 else "",
        where=endpoint or ("the object store" if url is not None else "AWS"),
    )
    if options is not None:
        text = options.scrub(text)
    return cls(_one_line(text))

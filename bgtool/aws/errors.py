"""AWS and network failures in operators' words: what failed, against which AWS, why, how to recover.

boto3 raises a zoo of exceptions (ClientError with a service error code, NoCredentialsError,
EndpointConnectionError, ProfileNotFound, ...). Every command lets them propagate and the CLI's
error policy turns them into one report here, so the advice for an expired token or an unreachable
endpoint is written once and is the same for every command. Nothing secret is ever included: the
endpoint, region, profile name and (when an ARN in the error names it) the account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
    WaiterError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from bgtool.errors import BgtoolError

# Error codes AWS services answer with, by likely cause.
CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId", "UnrecognizedClientException",
    "SignatureDoesNotMatch", "AuthFailure", "InvalidAccessKeyId", "InvalidToken", "TokenRefreshRequired",
    "InvalidSignatureException", "MissingAuthenticationToken", "MissingAuthenticationTokenException",
})
PERMISSION_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "AuthorizationError",
    "UnauthorizedAccess", "AllAccessDisabled",
})
# The codes botocore's standard retry mode treats as throttling (botocore.retries.standard).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException",
})
NOT_FOUND_CODES = frozenset({
    "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "NotFound", "404", "LoadBalancerNotFound",
    "TargetGroupNotFound", "ListenerNotFound", "ValidationError",
})
_ACCOUNT = re.compile(r"arn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):")


@dataclass(frozen=True)
class Target:
    """Which AWS a client talks to, as far as it is safe to print."""

    region: str
    endpoint: str | None = None
    profile: str | None = None
    embedded: bool = False

    def describe(self) -> str:
        if self.embedded:
            profile = f", profile {self.profile}" if self.profile else ""
            return f"the embedded AWS at {self.endpoint} (region {self.region}{profile})"
        where = f"AWS region {self.region}"
        if self.endpoint:
            where += f" at {self.endpoint}"
        return where + (f", profile {self.profile}" if self.profile else ", default credentials")

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "endpoint": self.endpoint, "profile": self.profile, "embedded": self.embedded}


class AwsFailure(BgtoolError):
    """An AWS or network failure, classified: `kind` says which (scripts branch on it), `details` where."""

    def __init__(self, message: str, *, hint: str, kind: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.details = details or {}


@dataclass(frozen=True)
class _Cause:
    kind: str
    cause: str
    fix: str
    details: dict[str, Any] = field(default_factory=dict)


def is_aws_failure(exc: BaseException) -> bool:
    """Whether `explain` has something to say about EXC (boto3 and socket-level failures)."""
    return isinstance(exc, (ClientError, BotoCoreError, ConnectionError, TimeoutError))


def explain(exc: BaseException, target: Target | None, rerun: str) -> AwsFailure:
    """One report for an AWS/network exception; `rerun` is the command that retries what failed."""
    cause = _classify(exc, target)
    what = _what(exc)
    where = f" against {target.describe()}" if target else ""
    account = _ACCOUNT.search(str(exc))
    if account:
        where += f", account {account.group(1)}"
    message = f"{what} failed{where}: {_summary(exc)} (likely cause: {cause.cause})"
    details = {**(target.to_dict() if target else {}), **cause.details, "exception": type(exc).__name__}
    if account:
        details["account"] = account.group(1)
    return AwsFailure(message, hint=f"{cause.fix}, then run '{rerun}' again.", kind=cause.kind, details=details)


def _what(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"AWS call {exc.operation_name}"
    if isinstance(exc, WaiterError):
        return f"waiting for AWS ({exc.name})"
    if isinstance(exc, BotoCoreError):
        return "AWS request"
    return "network request"


def _summary(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, text = error.get("Code", "?"), (error.get("Message") or "").strip()
        return f"{code}: {text}" if text else code
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _classify(exc: BaseException, target: Target | None) -> _Cause:
    if isinstance(exc, ClientError):
        return _classify_client_error(exc, target)
    if isinstance(exc, ProfileNotFound):
        return _Cause("aws-credentials", f"the AWS profile {exc.kwargs.get('profile')!r} is not configured here",
                      "Configure it ('aws configure --profile NAME' or ~/.aws/config) or fix aws.profile in the "
                      "environment file")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, SSOError,
                        TokenRetrievalError)):
        return _Cause("aws-credentials", "no usable AWS credentials (missing, incomplete or expired)",
                      _login_fix(target))
    if isinstance(exc, NoRegionError):
        return _Cause("aws-config", "no AWS region configured", "Set aws.region in the environment file")
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ConnectionClosedError, ConnectionError, TimeoutError)):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url") or (target.endpoint if target else None)
        return _Cause("network", _unreachable(target), _network_fix(target), {"endpoint": endpoint} if endpoint else {})
    if isinstance(exc, WaiterError):
        return _Cause("aws-timeout", "the resource did not reach the awaited state in time",
                      "Check the resource in the AWS console or with 'bgtool status ENV'")
    return _Cause("aws", "the AWS SDK rejected the request", "Check the environment file's aws settings")


def _classify_client_error(exc: ClientError, target: Target | None) -> _Cause:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    details = {"code": code, "operation": exc.operation_name, "http_status": status}
    request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
    if request_id:
        details["request_id"] = request_id
    if code in CREDENTIAL_CODES:
        return _Cause("aws-credentials", "the AWS credentials are expired or invalid", _login_fix(target), details)
    if code in PERMISSION_CODES:
        return _Cause("aws-permission", f"the identity in use may not call {exc.operation_name}",
                      "Use a role or profile allowed to (see the required actions in the README)", details)
    if code in THROTTLING_CODES or status == 429:
        return _Cause("aws-throttling", "AWS is throttling this account's requests (retries were exhausted)",
                      "Wait a minute (or reduce concurrent pipelines)", details)
    if code in NOT_FOUND_CODES or status == 404:
        return _Cause("aws-not-found", "a resource bgtool expects does not exist (not applied yet, or deleted)",
                      "Create it with 'bgtool apply ENV' (or check 'bgtool drift ENV')", details)
    if status is not None and status >= 500:
        cause = ("the embedded AWS does not implement this call or failed" if target and target.embedded
                 else "an AWS service error")
        return _Cause("aws-service", cause, "Retry in a moment; if it persists, check the service's health", details)
    return _Cause("aws", "AWS rejected the request", "Check the environment file's settings against the account",
                  details)


def _unreachable(target: Target | None) -> str:
    if target and target.embedded:
        return "the embedded AWS is not running or not answering"
    return "the AWS endpoint is unreachable (network, proxy, DNS or a timeout)"


def _network_fix(target: Target | None) -> str:
    if target and target.embedded:
        return "Start it with 'bgtool local up' (or point BGTOOL_AWS_ENDPOINT at the running server)"
    return "Check the network path to AWS (proxy, VPN, DNS)"


def _login_fix(target: Target | None) -> str:
    if target and target.profile:
        return f"Refresh the credentials of profile {target.profile} (e.g. 'aws sso login --profile {target.profile}')"
    return "Provide credentials (AWS_PROFILE, an OIDC role in CI, or 'aws configure')"

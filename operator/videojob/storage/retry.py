"""The retry policy for every AWS call, in one place: botocore's, and only botocore's.

Each HTTP request (one PutObject, one multipart part, one DynamoDB write) is retried by
botocore's `standard` (or `adaptive`) retry mode: throttling (SlowDown, Throttling,
ProvisionedThroughputExceeded), 5xx and connection errors, with exponential backoff and jitter
(the seed's rule: about 1 s, then x2) and a client-wide retry quota. `AWS_MAX_RETRIES` is the
number of retries after the first attempt, so a request is tried at most `AWS_MAX_RETRIES + 1`
times (4 at the default of 3). Nothing above botocore retries an AWS call again: a failed part
is retried on its own, never the whole upload, and attempts never multiply. Retries of the whole
run (spec.retryStrategy) sit on top, for the job, not for the call.

Errors are classified once (`is_retryable`): timeouts, connection errors, 5xx, SlowDown and
throttling are retryable; AccessDenied, NoSuchBucket, missing tables, validation and client-side
parameter errors are not. An operation that fails anyway raises `AWSError`, which says which.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

RETRYABLE_CODES = frozenset(
    {
        "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "TransactionInProgressException",
        "InternalError", "InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
        "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "OperationAborted",
    }
)
_RETRYABLE_EXCEPTIONS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, TimeoutError, ConnectionError)
_NEVER = (ParamValidationError, NoCredentialsError)


class AWSError(Exception):
    """An AWS operation failed for good (after retries). `retryable` says whether a later run may pass."""

    def __init__(self, service: str, operation: str, cause: BaseException):
        self.service = service
        self.operation = operation
        self.cause = cause
        self.code = error_code(cause)
        self.retryable = is_retryable(cause)
        super().__init__(f"{service} {operation} failed: {describe_error(cause)}")


def _chain(exc: BaseException):
    """The exception and what caused it (boto3 wraps s3transfer's ClientError in S3UploadFailedError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def error_code(exc: BaseException) -> str | None:
    for e in _chain(exc):
        if isinstance(e, ClientError):
            return e.response.get("Error", {}).get("Code")
    return None


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_retryable(exc: BaseException) -> bool:
    """True when the same call may succeed later without any change (see module doc)."""
    for e in _chain(exc):
        if isinstance(e, AWSError):
            return e.retryable
        if isinstance(e, _NEVER):
            return False
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            return code in RETRYABLE_CODES or _status(e) >= 500
        if isinstance(e, _RETRYABLE_EXCEPTIONS):
            return True
    return False


def describe_error(exc: BaseException) -> str:
    """One line for status messages: the AWS error code and message, without a traceback."""
    for e in _chain(exc):
        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            code = err.get("Code") or _status(e)
            return f"{code}: {err.get('Message') or e}"
        if isinstance(e, (BotoCoreError, OSError)):
            return f"{type(e).__name__}: {e}"
    return f"{type(exc).__name__}: {exc}"


def botocore_config(max_retries: int, mode: str = "standard", **extra: Any) -> Config:
    """Client config: the retry layer (at most `max_retries + 1` attempts per request, see the
    module doc) and pooled connections for parallel parts."""
    return Config(
        retries={"total_max_attempts": max_retries + 1, "mode": mode},
        max_pool_connections=max(10, extra.pop("pool", 10)),
        connect_timeout=extra.pop("connect_timeout", 10),
        read_timeout=extra.pop("read_timeout", 60),
        **extra,
    )


class AttemptCounter:
    """Counts HTTP attempts and API calls of one client; attempts - calls = the retries botocore made."""

    def __init__(self, client: Any):
        self._lock = threading.Lock()
        self.calls = 0
        self.attempts = 0
        client.meta.events.register("before-call", self._on_call)
        client.meta.events.register("request-created", self._on_attempt)

    def _on_call(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1

    def _on_attempt(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    @property
    def retries(self) -> int:
        with self._lock:
            return self.attempts - self.calls

"""The retry policy for every AWS call, in one place.

Two levels, each with its own job and no third anywhere else:

* Each HTTP request: botocore's `standard` (or `adaptive`) retry mode retries throttling
  (SlowDown, Throttling, ProvisionedThroughputExceeded), 5xx and connection errors, with
  exponential backoff and a client-wide retry quota. `AWS_MAX_RETRIES` retries per request.
* Each operation (an upload of one object, a DynamoDB write): `operation_retrying()` re-runs the
  whole operation when it still failed with a retryable error — the seed's rule: 1 s initial delay,
  x2 with jitter, `AWS_MAX_RETRIES` retries. This covers what a single request retry cannot, e.g. a
  multipart upload that s3transfer aborted after one part failed for good.

Errors are classified once (`is_retryable`): timeouts, connection errors, 5xx, SlowDown and
throttling are retryable; AccessDenied, NoSuchBucket, missing tables, validation and client-side
parameter errors are not, and are never retried.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from videojob import metrics

log = logging.getLogger(__name__)

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

INITIAL_DELAY = 1.0
MAX_DELAY = 20.0


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
    """Client config: request-level retries (see module doc), pooled connections for parallel parts."""
    return Config(
        retries={"total_max_attempts": max_retries + 1, "mode": mode},
        max_pool_connections=max(10, extra.pop("pool", 10)),
        connect_timeout=extra.pop("connect_timeout", 10),
        read_timeout=extra.pop("read_timeout", 60),
        **extra,
    )


class AttemptCounter:
    """Counts HTTP attempts and API calls of one client; attempts - calls = request-level retries."""

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


def operation_retrying(
    service: str,
    operation: str,
    max_retries: int,
    *,
    initial_delay: float = INITIAL_DELAY,
    on_retry: Callable[[BaseException], None] | None = None,
) -> AsyncRetrying:
    """The operation-level policy: `async for attempt in operation_retrying(...): with attempt: ...`.

    Counts every failed attempt in `videojob_aws_errors_total{service,operation,retryable}`.
    """

    def count(exc: BaseException) -> bool:
        retryable = is_retryable(exc)
        metrics.record_aws_error(service, operation, retryable)
        return retryable

    def before_sleep(rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        log.warning("%s %s failed (attempt %d), retrying: %s", service, operation, rs.attempt_number, describe_error(exc))
        if on_retry and exc is not None:
            on_retry(exc)

    return AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential_jitter(initial=initial_delay, exp_base=2, max=MAX_DELAY, jitter=initial_delay),
        retry=retry_if_exception(count),
        before_sleep=before_sleep,
        reraise=True,
    )

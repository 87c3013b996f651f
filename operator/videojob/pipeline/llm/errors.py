"""Which failed model calls are worth another try, and what to tell users about them.

Classification is by HTTP status and exception names, so it works for every provider's client
(openai, anthropic, httpx, botocore) without importing any of them.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Iterable


def redact(text: str, secrets: Iterable[object]) -> str:
    """`text` with every credential value in it replaced by ***."""
    for value in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text

def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = (response.get("Error") or {}).get("Code", "")
        if code in ("ThrottlingException", "TooManyRequestsException"):
            return 429
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


_TIMEOUT_NAMES = {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "ReadTimeoutError", "ConnectTimeoutError"}
_CONNECTION_NAMES = {
    "APIConnectionError", "ConnectError", "RemoteProtocolError", "TransportError", "EndpointConnectionError",
    "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
}


def retry_reason(exc: BaseException) -> str | None:
    """Why a failed call is worth another try (the `reason` of videojob_retries_total), or None
    when retrying cannot help (bad request, bad key, unknown model)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & _TIMEOUT_NAMES:
        return "Timeout"
    if isinstance(exc, json.JSONDecodeError):
        # A 200 whose body is not JSON: typically a proxy's error page under load.
        return "MalformedResponse"
    status = _status_code(exc)
    if status == 429:
        return "RateLimited"
    if status is not None and status >= 400:
        return "ServerError" if status >= 500 or status == 408 else None
    if isinstance(exc, ConnectionError) or names & _CONNECTION_NAMES:
        return "ConnectionError"
    return None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After (or retry-after-ms) hint, in seconds, if it gave one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    else:
        headers = getattr(response, "headers", None) or {}
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def describe(exc: BaseException) -> str:
    """One line about a failed call: the exception's kind, HTTP status and first line."""
    status = _status_code(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:300]
    kind = type(exc).__name__
    if status is not None and status >= 400 and str(status) not in text:
        return f"{kind} (HTTP {status}): {text}"
    return f"{kind}: {text}" if text else kind

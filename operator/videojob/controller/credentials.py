"""The one credential reader: the Secret named by spec.llm.credentialsSecretRef.

Only a Secret labelled `videogen.io/credentials: "true"` is read (listed by name and label, see
`controller.secrets`), and of it only the keys of the providers the job uses.

Used by the inline run and by the worker. Every value read is registered for log redaction
(`logs.redact`) before it is returned, so a key is masked in every log line of the process that
holds it, whichever executor runs the job.

Failures are classified, never swallowed:
- the Secret is absent or unlabelled, or the ServiceAccount may not read it (401/403): the attempt fails
  with reason CredentialsUnavailable and a message naming the Secret and the cause. It is not a
  Stalled failure: creating the Secret or fixing RBAC helps without a spec change, so the job's
  retryStrategy applies.
- the API server is throttling or failing (429, 5xx): the read is retried here, with backoff,
  within `READ_ATTEMPTS` (this is the one retry layer for HTTP statuses; urllib3 below retries
  only broken connections), then the attempt fails as above.
- anything else (a bug such as a TypeError) propagates: it is not a credentials problem and
  must not become a retry loop.
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

import urllib3
from kubernetes.client.rest import ApiException
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import WaitBaseT

from videojob import policy
from videojob.api.models import VideoJob
from videojob.controller.secrets import SecretNotLabelled, labelled_secret_data
from videojob.logs import redact
from videojob.pipeline.errors import TransientError

FIELD = "spec.llm.credentialsSecretRef"
READ_ATTEMPTS = 4
RETRY_WAIT: WaitBaseT = wait_exponential_jitter(initial=0.5, max=8)
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# (namespace, Secret name, keys) -> values; raises SecretNotLabelled or ApiException.
SecretRead = Callable[[str, str, set[str]], Awaitable[dict[str, str]]]


class CredentialsUnavailable(TransientError):
    reason = "CredentialsUnavailable"


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status in _TRANSIENT_STATUSES


def _explain(exc: ApiException | urllib3.exceptions.HTTPError, namespace: str, name: str) -> str:
    where = f"Secret {name!r} in namespace {namespace!r} ({FIELD})"
    status = getattr(exc, "status", None)
    if status == 404:
        return f"{where} does not exist"
    if status in (401, 403):
        return f"{where} cannot be read: forbidden (HTTP {status}); the ServiceAccount needs list on it"
    if status in _TRANSIENT_STATUSES:
        return f"{where} cannot be read: the API server answered HTTP {status} {READ_ATTEMPTS} times"
    if status:
        return f"{where} cannot be read: HTTP {status} {getattr(exc, 'reason', '') or ''}".rstrip()
    return f"{where} cannot be read: the API server is unreachable ({type(exc).__name__})"


async def read_credentials(
    kube: Any, namespace: str, job: VideoJob, *, default_model: str | None = None, wait: WaitBaseT | None = None,
    read: SecretRead | None = None,
) -> dict[str, str] | None:
    """The Secret's values for the job's providers (None when the job names no Secret), each
    registered for redaction. Raises CredentialsUnavailable (see the module docstring); `wait`
    overrides the backoff; `default_model` is the operator's VIDEOJOB_LLM_MODEL; `read` replaces
    the labelled list through `kube.core` (tests script the API server's answers with it)."""
    llm = job.spec.llm
    if llm is None or llm.credentials_secret_ref is None:
        return None
    name = llm.credentials_secret_ref.name
    retrying = AsyncRetrying(
        retry=retry_if_exception(_transient), stop=stop_after_attempt(READ_ATTEMPTS),
        wait=wait or RETRY_WAIT, reraise=True,
    )
    keys = policy.secret_keys(job, default_model)
    try:
        data: dict[str, str] = await retrying(read or functools.partial(labelled_secret_data, kube.core), namespace, name, keys)
    except SecretNotLabelled:
        raise CredentialsUnavailable(
            f"Secret {name!r} in namespace {namespace!r} ({FIELD}) does not exist or does not carry the "
            f"label {policy.CREDENTIALS_LABEL}: \"true\""
        ) from None
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        raise CredentialsUnavailable(_explain(exc, namespace, name)) from None
    return {key: redact(value) for key, value in data.items()}

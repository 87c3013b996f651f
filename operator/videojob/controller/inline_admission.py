"""Admission with the inline executor: a VideoJob naming an unlabelled Secret is refused before
it is queued (a metadata-only list: labels, no data). Only the inline executor's operator reads
Secrets; in job mode the worker's labelled read refuses such a Secret when the run starts.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.rest import ApiException

from videojob import policy
from videojob.api.models import VideoJob
from videojob.controller.secrets import is_labelled, list_secrets

log = logging.getLogger(__name__)


async def secret_denial(core: Any, job: VideoJob, namespace: str) -> policy.Denial | None:
    llm = job.spec.llm
    if llm is None or llm.credentials_secret_ref is None:
        return None
    name = llm.credentials_secret_ref.name
    try:
        found = await list_secrets(core, namespace, name, labelled=False)
    except ApiException as exc:  # RBAC or the API server: decided when the run reads it
        log.warning("cannot list Secrets in %s (HTTP %s); checked again when the run starts", namespace, exc.status)
        return None
    if not found or is_labelled(found[0]):
        return None  # absent: the run waits for it (retried), as when it cannot be read
    return policy.Denial(
        "spec.llm.credentialsSecretRef.name", policy.RULE_SECRET_LABEL,
        f"Secret {name!r} does not carry the label {policy.CREDENTIALS_LABEL}: \"true\"; the operator reads "
        "only Secrets that opt in with it (label the Secret, then edit the VideoJob)",
    )

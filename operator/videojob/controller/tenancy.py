"""Applies the tenancy policy (`videojob.policy`) with the Kubernetes reads it needs.

- `TenancyGate.admit` runs before a VideoJob is queued: the pure checks, then the two reads
  only some VideoJobs need, each the smallest that can decide: the Namespace (for its
  `videogen.io/projects` annotation, only when spec.projectId is not the namespace), and a
  metadata-only list of the Secret named in spec.llm.credentialsSecretRef (labels, no data).
  An unlabelled Secret is refused; an absent one is left to the run (retried: GitOps tools may
  apply the Secret after the VideoJob).
- `labelled_secret_data` is how a run reads its Secret (through `controller.credentials`): a list
  filtered by name and label, so the API server never returns an unlabelled Secret's data to
  the operator; of it, only the keys of the providers the job uses are decoded.

Both need the operator's rights `get namespaces` and `list secrets` (the Helm chart grants them);
a field selector on metadata.name lets `resourceNames` still restrict which Secrets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from kubernetes.client.rest import ApiException

from videojob import policy
from videojob.api.models import VideoJob

log = logging.getLogger(__name__)

# Ask for metadata only (the API server then sends no Secret data at all), JSON as a fallback.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class SecretNotLabelled(Exception):
    """No Secret of that name carries the credentials label (absent, or unlabelled since admission)."""


async def namespace_annotations(core: Any, namespace: str) -> dict[str, str]:
    """The Namespace's annotations; empty when it cannot be read (then nothing is granted)."""
    try:
        ns = await asyncio.to_thread(core.read_namespace, namespace)
    except ApiException as exc:
        log.warning("cannot read Namespace %s (HTTP %s); it is granted no other project", namespace, exc.status)
        return {}
    return dict((ns.metadata.annotations if ns.metadata else None) or {})


async def _list_secrets(core: Any, namespace: str, name: str, *, labelled: bool) -> list[dict[str, Any]]:
    """Secrets named `name`: with `labelled`, those carrying the credentials label, data included
    (the API server filters: an unlabelled one is never sent); else metadata only (no data)."""
    query = [("fieldSelector", f"metadata.name={name}")]
    if labelled:
        query.insert(0, ("labelSelector", policy.CREDENTIALS_LABEL_SELECTOR))
    # Through call_api: the generated list method would replace our Accept header with its own.
    response = await asyncio.to_thread(
        core.api_client.call_api, "/api/v1/namespaces/{namespace}/secrets", "GET",
        path_params={"namespace": namespace}, query_params=query,
        header_params={"Accept": "application/json" if labelled else METADATA_ONLY},
        auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
    )
    try:
        body = json.loads(response.data)
    finally:
        response.release_conn()
    items = [item for item in body.get("items") or [] if (item.get("metadata") or {}).get("name") == name]
    if labelled:  # a server that ignored the selector must not make us use an unlabelled Secret
        items = [i for i in items if _is_labelled(i)]
    return items


def _is_labelled(item: dict[str, Any]) -> bool:
    return ((item.get("metadata") or {}).get("labels") or {}).get(policy.CREDENTIALS_LABEL) == "true"


class TenancyGate:
    """The admission check of one operator: `admit(job, namespace)` -> Denial or None."""

    def __init__(self, settings: Any, core: Any):
        self.policy = policy.TenancyPolicy.from_settings(settings)
        self.default_model = settings.llm_model
        self.core = core

    async def admit(self, job: VideoJob, namespace: str) -> policy.Denial | None:
        annotations = None
        if policy.project_needs_namespace(job, namespace):
            annotations = await namespace_annotations(self.core, namespace)
        denial = policy.check(job, namespace, self.policy, default_model=self.default_model,
                              namespace_annotations=annotations)
        if denial is None:
            denial = await self._check_secret(job, namespace)
        return denial

    async def _check_secret(self, job: VideoJob, namespace: str) -> policy.Denial | None:
        llm = job.spec.llm
        if llm is None or llm.credentials_secret_ref is None:
            return None
        name = llm.credentials_secret_ref.name
        try:
            found = await _list_secrets(self.core, namespace, name, labelled=False)
        except ApiException as exc:  # RBAC or the API server: decided when the run reads it
            log.warning("cannot list Secrets in %s (HTTP %s); checked again when the run starts", namespace, exc.status)
            return None
        if not found or _is_labelled(found[0]):
            return None  # absent: the run waits for it (retried), as when it cannot be read
        return policy.Denial(
            "spec.llm.credentialsSecretRef.name", policy.RULE_SECRET_LABEL,
            f"Secret {name!r} does not carry the label {policy.CREDENTIALS_LABEL}: \"true\"; the operator reads "
            "only Secrets that opt in with it (label the Secret, then edit the VideoJob)",
        )


async def labelled_secret_data(core: Any, namespace: str, name: str, keys: set[str]) -> dict[str, str]:
    """The values of `keys` in the Secret `name`, read with the credentials label as a selector
    (the API server never sends an unlabelled Secret). Raises SecretNotLabelled when no labelled
    Secret has that name, ApiException for the API server's errors."""
    found = await _list_secrets(core, namespace, name, labelled=True)
    if not found:
        raise SecretNotLabelled(name)
    secret = found[0]
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items() if k in keys}
    data.update({k: v for k, v in (secret.get("stringData") or {}).items() if k in keys})
    return data

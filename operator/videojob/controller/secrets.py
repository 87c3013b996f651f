"""Reading Secrets only by name AND the credentials label `videogen.io/credentials: "true"`.

- `labelled_secret_data` is how a run reads its Secret (through `controller.credentials`): a list
  filtered by name and label, so the API server never returns an unlabelled Secret's data;
  of it, only the keys of the providers the job uses are decoded.
- `list_secrets(labelled=False)` asks for metadata only (the inline executor's admission check).

Both need `list secrets`; a field selector on metadata.name lets `resourceNames` still restrict
which Secrets. Only the inline executor and the worker import this module: the Job executor's
operator never reads a Secret (tests/deploy/test_rbac.py derives the chart's rights from that).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from videojob import policy
from videojob.controller.kube import api_call

# Ask for metadata only (the API server then sends no Secret data at all), JSON as a fallback.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class SecretNotLabelled(Exception):
    """No Secret of that name carries the credentials label (absent, or unlabelled since admission)."""


async def list_secrets(core: Any, namespace: str, name: str, *, labelled: bool) -> list[dict[str, Any]]:
    """Secrets named `name`: with `labelled`, those carrying the credentials label, data included
    (the API server filters: an unlabelled one is never sent); else metadata only (no data)."""
    query = [("fieldSelector", f"metadata.name={name}")]
    if labelled:
        query.insert(0, ("labelSelector", policy.CREDENTIALS_LABEL_SELECTOR))
    # Through call_api: the generated list method would replace our Accept header with its own.
    response = await api_call(
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
        items = [i for i in items if is_labelled(i)]
    return items


def is_labelled(item: dict[str, Any]) -> bool:
    return ((item.get("metadata") or {}).get("labels") or {}).get(policy.CREDENTIALS_LABEL) == "true"


async def labelled_secret_data(core: Any, namespace: str, name: str, keys: set[str]) -> dict[str, str]:
    """The values of `keys` in the Secret `name`, read with the credentials label as a selector
    (the API server never sends an unlabelled Secret). Raises SecretNotLabelled when no labelled
    Secret has that name, ApiException for the API server's errors."""
    found = await list_secrets(core, namespace, name, labelled=True)
    if not found:
        raise SecretNotLabelled(name)
    secret = found[0]
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items() if k in keys}
    data.update({k: v for k, v in (secret.get("stringData") or {}).items() if k in keys})
    return data

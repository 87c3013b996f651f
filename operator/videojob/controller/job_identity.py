"""Makes the worker identity exist in a VideoJob's namespace before its Job (all-namespaces mode).

`worker_identity.py` builds the objects (ServiceAccount, RoleBinding to the worker ClusterRole,
the worker pods' NetworkPolicy); this module applies them: read each, create what is missing,
and repair what drifted on objects the operator made itself (the ServiceAccount's annotations,
e.g. a new IRSA role after `helm upgrade`; the NetworkPolicy's spec). A RoleBinding's roleRef
cannot change, and its subjects are ours by construction: it is only created.

Objects someone else made under those names (Helm in the release namespace, an administrator)
are left as they are: the operator only fills the gap, it never takes over.

One round of requests per namespace per operator process: `ensure` remembers the namespaces
it has prepared. A worker pod refused for a missing ServiceAccount (someone deleted it) makes the
Job executor call `repair`, which forgets and prepares the namespace again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from videojob.config import Settings
from videojob.controller.kube import MERGE_PATCH, api_call
from videojob.controller.worker_identity import MANAGED_LABELS, manages_worker_identity, worker_identity

log = logging.getLogger(__name__)

OURS = ("app.kubernetes.io/managed-by", MANAGED_LABELS["app.kubernetes.io/managed-by"])
# The annotation keys the operator set on a ServiceAccount it made, so a key dropped from
# VIDEOJOB_WORKER_SERVICE_ACCOUNT_ANNOTATIONS is removed again (and nobody else's key is).
SET_ANNOTATIONS = "videogen.io/managed-annotations"


class WorkerIdentityKeeper:
    """`ensure(namespace)` before a worker Job is created there; a no-op when the chart made
    the identity (VIDEOJOB_WORKER_CLUSTER_ROLE unset)."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None, settings: Settings):
        """`api_client` may be None when the operator does not manage the identity."""
        self.settings = settings
        self.enabled = manages_worker_identity(settings)
        if self.enabled:
            self.core = kubernetes.client.CoreV1Api(api_client)
            self.rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
            self.networking = kubernetes.client.NetworkingV1Api(api_client)
            self._dict = api_client.sanitize_for_serialization
        self._ready: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def account_missing(self, job: dict[str, Any], refusal: str) -> bool:
        """`refusal` (a FailedCreate message about `job`) says the pod's ServiceAccount is not
        found, and it is the one the operator makes (so making it again helps)."""
        pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        account = pod.get("serviceAccountName") or ""
        return (self.enabled and account == self.settings.worker_service_account
                and f'serviceaccount "{account}" not found' in refusal)

    async def ensure(self, namespace: str) -> None:
        """The worker identity exists in `namespace` (at most one round of requests per
        namespace and process; concurrent callers wait for the one doing it)."""
        if not self.enabled or namespace in self._ready:
            return
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            if namespace in self._ready:
                return
            for wanted in worker_identity(namespace, self.settings):
                await self._ensure_object(recorded(wanted))
            self._ready.add(namespace)

    async def repair(self, namespace: str) -> None:
        """Something of the identity went missing: check and recreate it."""
        log.info("the worker identity in %s went missing; making it again", namespace)
        self._ready.discard(namespace)
        await self.ensure(namespace)

    # ------------------------------------------------------------------------------ inside

    async def _ensure_object(self, wanted: dict[str, Any]) -> None:
        kind, name, namespace = wanted["kind"], wanted["metadata"]["name"], wanted["metadata"]["namespace"]
        current = await self._call(kind, "read", name, namespace)
        if current is None:
            try:
                await self._call(kind, "create", namespace, wanted)
                log.info("created %s %s/%s for worker pods", kind, namespace, name)
                return
            except ApiException as exc:
                if exc.status != 409:  # 409: made meanwhile (another replica, a user)
                    raise
            current = await self._call(kind, "read", name, namespace) or {}
        labels = (current.get("metadata") or {}).get("labels") or {}
        if labels.get(OURS[0]) != OURS[1]:
            return  # made by Helm or an administrator: theirs to keep
        patch = drift(wanted, current)
        if patch is not None:
            await self._call(kind, "patch", name, namespace, patch)
            log.info("repaired %s %s/%s (drifted from the operator's settings)", kind, namespace, name)

    async def _call(self, kind: str, action: str, *args: Any) -> dict[str, Any] | None:
        """One API call on a worker identity object; a read of a missing object is None."""
        call = self._calls(kind)[action]
        try:
            result = await api_call(call, *args)
        except ApiException as exc:
            if exc.status == 404 and action == "read":
                return None
            raise
        return self._dict(result)

    def _calls(self, kind: str) -> dict[str, Any]:
        if kind == "ServiceAccount":
            return {"read": self.core.read_namespaced_service_account,
                    "create": self.core.create_namespaced_service_account,
                    "patch": lambda name, ns, body: self.core.patch_namespaced_service_account(
                        name, ns, body, _content_type=MERGE_PATCH)}
        if kind == "RoleBinding":
            return {"read": self.rbac.read_namespaced_role_binding,
                    "create": self.rbac.create_namespaced_role_binding}
        if kind == "NetworkPolicy":
            return {"read": self.networking.read_namespaced_network_policy,
                    "create": self.networking.create_namespaced_network_policy,
                    "patch": lambda name, ns, body: self.networking.patch_namespaced_network_policy(
                        name, ns, body, _content_type=MERGE_PATCH)}
        raise ValueError(f"not a worker identity kind: {kind}")


def recorded(obj: dict[str, Any]) -> dict[str, Any]:
    """A ServiceAccount to create, noting which annotation keys are the operator's."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if obj["kind"] != "ServiceAccount" or not annotations:
        return obj
    meta = {**obj["metadata"], "annotations": {**annotations, SET_ANNOTATIONS: json.dumps(sorted(annotations))}}
    return {**obj, "metadata": meta}


def drift(wanted: dict[str, Any], current: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that brings an object the operator made back to `wanted`, or None.

    ServiceAccount: the annotations the settings name (and removal of those it set before and no
    longer names). NetworkPolicy: the whole spec (`spec: null` first would be a second request:
    the patch sets every top-level key of the wanted spec and nulls the others)."""
    if wanted["kind"] == "ServiceAccount":
        have = (current.get("metadata") or {}).get("annotations") or {}
        want = dict((wanted.get("metadata") or {}).get("annotations") or {})
        want.pop(SET_ANNOTATIONS, None)
        previously = set(json.loads(have.get(SET_ANNOTATIONS) or "[]"))
        changes: dict[str, Any] = {k: v for k, v in want.items() if have.get(k) != v}
        changes.update({k: None for k in previously - set(want) if k in have})
        record = json.dumps(sorted(want))
        if have.get(SET_ANNOTATIONS, "[]") != record:
            changes[SET_ANNOTATIONS] = record if want else None
        return {"metadata": {"annotations": changes}} if changes else None
    if wanted["kind"] == "NetworkPolicy":
        have, want = current.get("spec") or {}, wanted.get("spec") or {}
        if have == want:
            return None
        return {"spec": {**{k: None for k in have if k not in want}, **want}}
    return None

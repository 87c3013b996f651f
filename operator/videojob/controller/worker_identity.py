"""The worker's identity in a VideoJob's namespace, when the operator manages it (pure builders).

Watching all namespaces, the chart cannot know where VideoJobs will appear, yet a worker pod needs
its ServiceAccount (and the rights bound to it) in its own namespace, or the Job controller never
creates the pod. So, like Kubeflow's profile controller, the operator makes them: before the first
Job in a namespace it creates (if absent) the worker ServiceAccount, a RoleBinding of the chart's
worker ClusterRole to it (namespace-scoped: the rights hold only there), and the worker pods'
NetworkPolicy (`job_identity.py` applies them). The chart gives the operator exactly the rights
for that: get/create/patch of ServiceAccounts and NetworkPolicies, get/create of RoleBindings, and
`bind` on that one ClusterRole (`resourceNames`), so it can grant nothing else (the RBAC
escalation check).

These objects are shared by the namespace's VideoJobs and carry no ownerReference (deleting one
VideoJob must not take the identity of the others); they are labelled so an uninstall can find them:
`kubectl delete sa,rolebinding,networkpolicy -A -l app.kubernetes.io/managed-by=videojob-operator`.

Enabled by VIDEOJOB_WORKER_CLUSTER_ROLE (the chart sets it in all-namespaces mode).
"""

from __future__ import annotations

import json
from typing import Any

from videojob.config import Settings

MANAGED_LABELS = {
    "app.kubernetes.io/managed-by": "videojob-operator",
    "app.kubernetes.io/component": "worker",
    "app.kubernetes.io/part-of": "videojob",
}


def manages_worker_identity(settings: Settings) -> bool:
    return bool(settings.worker_cluster_role)


def worker_service_account(namespace: str, settings: Settings) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": settings.worker_service_account, "namespace": namespace, "labels": dict(MANAGED_LABELS)}
    annotations = json.loads(settings.worker_service_account_annotations or "{}")
    if annotations:
        meta["annotations"] = annotations  # IRSA: eks.amazonaws.com/role-arn
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
            # Worker pods mount a projected token into the worker container only (podspec.py).
            "automountServiceAccountToken": False}


def worker_role_binding(namespace: str, settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": settings.worker_cluster_role, "namespace": namespace, "labels": dict(MANAGED_LABELS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": settings.worker_cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": settings.worker_service_account, "namespace": namespace}],
    }


def worker_network_policy(namespace: str, settings: Settings) -> dict[str, Any] | None:
    """The chart's NetworkPolicy for worker pods (VIDEOJOB_WORKER_NETWORK_POLICY: its spec as
    JSON), in `namespace`; None when the chart has none."""
    spec = json.loads(settings.worker_network_policy or "{}")
    if not spec:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        # Named like the chart's own (after the worker ClusterRole), so a namespace never gets two.
        "metadata": {"name": settings.worker_cluster_role or "videojob-worker", "namespace": namespace,
                     "labels": dict(MANAGED_LABELS)},
        "spec": spec,
    }


def worker_identity(namespace: str, settings: Settings) -> list[dict[str, Any]]:
    """What must exist in `namespace` before a worker Job is created there, in creation order.
    Empty when the operator does not manage worker identity (the chart made it)."""
    if not manages_worker_identity(settings):
        return []
    objects = [worker_service_account(namespace, settings), worker_role_binding(namespace, settings)]
    policy = worker_network_policy(namespace, settings)
    return objects + ([policy] if policy else [])

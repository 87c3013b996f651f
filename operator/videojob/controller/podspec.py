"""The pod of a worker Job: two containers, one boundary between them (pure; no API calls).

- `worker` talks to the API server (status, Events, the credentials Secret) and to AWS and the
  LLM. It alone gets a service-account token, projected into it only (the pod itself mounts
  none), and the AWS/LLM settings.
- `render` runs `videojob render-server`: the untrusted scene code. No token, no AWS or LLM
  variables, IRSA skipped (`eks.amazonaws.com/skip-containers`), its own user, a read-only root
  filesystem, all capabilities dropped, RuntimeDefault seccomp, and resource limits sized from the
  render settings. It is a native sidecar (an init container with restartPolicy Always): it starts
  first, and the Job completes when the worker exits.

The two share only the `spool` emptyDir: code in, video out (see pipeline/sandbox/pod.py). Pods
never share a process namespace (shareProcessNamespace stays off): the render container cannot
see the worker's processes, environment or files.
"""

from __future__ import annotations

import copy
from typing import Any

from videojob.config import Settings

WORKER_CONTAINER = "worker"
RENDER_CONTAINER = "render"
WORKDIR = "/work"
SPOOL = "/spool"
SPOOL_ENV = "VIDEOJOB_RENDER_SPOOL"  # = pipeline.sandbox.pod.SPOOL_ENV (kept import-free here)
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME = "kube-api-access"
TOKEN_EXPIRATION_SECONDS = 3607  # what the kubelet uses for its own projected tokens
SKIP_CONTAINERS = "eks.amazonaws.com/skip-containers"
WORKER_UID, RENDER_UID = 10001, 10002  # the image's user; the render container runs as another


def default_render_resources(settings: Settings) -> dict[str, Any]:
    """Requests and limits of the render container, from the render settings: one core and one
    scene's memory requested per scene rendered at once; the limit holds all of them at their
    sandbox memory cap plus the render server. Never BestEffort."""
    scenes = settings.scene_parallelism
    return {
        "requests": {"cpu": str(scenes), "memory": f"{settings.render_memory_mb}Mi"},
        "limits": {"memory": f"{settings.render_memory_mb * scenes + 512}Mi"},
    }


# The worker plans, calls the LLM, combines scenes (PyAV) and uploads; it renders nothing.
WORKER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}


def _restricted(uid: int) -> dict[str, Any]:
    """A container securityContext meeting the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def token_volume() -> dict[str, Any]:
    """What the kubelet would mount with automountServiceAccountToken, as a volume we place:
    a bound, expiring token plus the cluster CA and the namespace (the kubernetes client's
    in-cluster configuration reads exactly these three files)."""
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    }


def render_container(image: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": RENDER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",  # a native sidecar: stopped by the kubelet once the worker exits
        "args": ["render-server", "--spool", SPOOL],
        # Deliberately nothing from the operator's environment: no AWS_*, no LLM keys, no settings.
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"}],
        "resources": copy.deepcopy(resources),
        "securityContext": _restricted(RENDER_UID),
        "volumeMounts": [
            {"name": "spool", "mountPath": SPOOL},
            {"name": "render-tmp", "mountPath": "/tmp"},
        ],
    }


def worker_container(image: str, args: list[str], env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": WORKER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": env + [{"name": SPOOL_ENV, "value": SPOOL}],
        "resources": copy.deepcopy(WORKER_RESOURCES),
        "securityContext": _restricted(WORKER_UID),
        "volumeMounts": [
            {"name": "work", "mountPath": WORKDIR},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "spool", "mountPath": SPOOL},
            {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
        ],
    }


def pod_volumes() -> list[dict[str, Any]]:
    return [
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        {"name": "spool", "emptyDir": {"sizeLimit": "20Gi"}},
        {"name": "render-tmp", "emptyDir": {"sizeLimit": "2Gi"}},
        token_volume(),
    ]


def pod_spec(*, image: str, args: list[str], env: list[dict[str, Any]], service_account: str,
             render_resources: dict[str, Any], runtime_class: str | None = None) -> dict[str, Any]:
    """The worker pod's spec (scheduling fields are added by the caller)."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": service_account,
        # No token anywhere by default; the worker container mounts its projected one.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # no Service addresses in the environment of scene code
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": WORKER_UID,  # both containers can use the spool
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [render_container(image, render_resources)],
        "containers": [worker_container(image, args, env)],
        "volumes": pod_volumes(),
    }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return spec


def pod_annotations() -> dict[str, str]:
    # IRSA's webhook injects AWS credentials into every container unless told otherwise.
    return {SKIP_CONTAINERS: RENDER_CONTAINER}

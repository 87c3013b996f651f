"""The operator's own Kubernetes calls: status PATCH, metadata PATCH, Events, CRD check.

Secrets are read only by name AND the credentials label (`controller.secrets`, see
`videojob.controller.tenancy`).

Kopf applies a handler's patch only when the handler returns; a run reports progress for
minutes, so status goes straight to the `/status` subresource from here. The official client is
synchronous: every call runs in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from videojob.api.models import API_GROUP, API_VERSION, PLURAL

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
# kube-apiserver ends a request after 60 s (its --request-timeout); a connection silent for
# longer is dead (a partition, a vanished load balancer). Without a timeout the worker thread
# would wait for ever and, once every thread of the pool hangs so, the whole operator stops.
REQUEST_TIMEOUT = (10.0, 70.0)  # seconds: connect, read


# Kubernetes calls have threads of their own. asyncio's default pool (min(32, CPUs + 4) threads:
# 6 on two cores) also runs every render for its whole length and the file work of publishing: in
# a burst of VideoJobs a run's status write waited seconds behind hundreds of other runs' calls
# and the renders holding threads, and with as many concurrent renders as threads it would wait
# for a render to end. The client's connection pool is sized to match (KubeClient.from_environment).
API_THREADS = 16
_api_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _api_pool
    if _api_pool is None:
        _api_pool = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")
    return _api_pool


async def api_call(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Kubernetes client call in a worker thread, bounded by REQUEST_TIMEOUT."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    context = contextvars.copy_context()  # as asyncio.to_thread does: the run's log context goes along
    return await asyncio.get_running_loop().run_in_executor(_pool(), functools.partial(context.run, call, *args, **kwargs))


def plain(value: Any) -> Any:
    """Kopf's body views (read-only mappings) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class CRDMissing(RuntimeError):
    """The VideoJob CRD is not installed in the cluster the operator talks to."""


class KubeClient:
    def __init__(self, api_client: kubernetes.client.ApiClient):
        self.api_client = api_client
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    @classmethod
    def from_environment(cls) -> "KubeClient":
        """In-cluster service account first, then the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            # KUBECONFIG is read now: the client's default is fixed when it is imported.
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=config)
        config.connection_pool_maxsize = API_THREADS  # a kept-alive connection for every API thread
        return cls(kubernetes.client.ApiClient(config))

    def connection_info(self) -> Any:
        """Kopf's credentials from the same configuration (a login handler returns this)."""
        import kopf

        config = self.api_client.configuration
        header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
        parts = header.split(" ", 1) if header else []
        scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            username=config.username or None,
            password=config.password or None,
            scheme=scheme,
            token=token,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )

    def close(self) -> None:
        self.api_client.close()

    # ---------------------------------------------------------------------------- start-up

    def check_crd(self) -> None:
        """Raise CRDMissing unless the API server serves videojobs.videogen.io/v1alpha1."""
        try:
            found = self.custom.get_api_resources(API_GROUP, API_VERSION, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                found = None
            else:
                raise
        names = {r.name for r in (found.resources if found else [])}
        if PLURAL not in names:
            raise CRDMissing(
                f"the API server does not serve {PLURAL}.{API_GROUP}/{API_VERSION}: install the CRD first "
                "(kubectl apply -f crds/videojob.yaml, or install the Helm chart)"
            )

    # ------------------------------------------------------------------------------ writes

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """Merge-patch `.status`; None when the object is gone. With `resource_version`, only if
        the object is still at that version (else ApiException 409 Conflict)."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._patch(namespace, name, body, status_subresource=True)

    async def patch_metadata(self, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
        return await self._patch(namespace, name, {"metadata": metadata}, status_subresource=False)

    async def _patch(self, namespace: str, name: str, body: dict[str, Any], *, status_subresource: bool) -> dict[str, Any] | None:
        call = (
            self.custom.patch_namespaced_custom_object_status
            if status_subresource
            else self.custom.patch_namespaced_custom_object
        )
        try:
            return await api_call(
                call, API_GROUP, API_VERSION, namespace, PLURAL, name, body, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def read_videojob(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The VideoJob as stored (status included); None when it is gone."""
        try:
            return await api_call(
                self.custom.get_namespaced_custom_object, API_GROUP, API_VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        await api_call(self.core.create_namespaced_event, namespace, event)

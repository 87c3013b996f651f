"""Applies the tenancy policy (`videojob.policy`) with the Kubernetes reads it needs.

- `TenancyGate.admit` runs before a VideoJob is queued: the pure checks, then the two reads
  only some VideoJobs need, each the smallest that can decide: the Namespace (for its
  `videogen.io/projects` annotation, only when spec.projectId is not the namespace), and a
  metadata-only list of the Secret named in spec.llm.credentialsSecretRef (labels, no data) with
  the inline executor only (`inline_admission`): in job mode the operator holds no Secret right
  and the worker's labelled read (`controller.secrets`) refuses an unlabelled Secret.
  An unlabelled Secret is refused; an absent one is left to the run (retried: GitOps tools may
  apply the Secret after the VideoJob).

The Namespace read needs the operator's right `get namespaces` (the Helm chart grants it).
Admissions of one namespace that arrive while its read is in flight share that read (a burst of
VideoJobs costs one GET, not one each); no answer is kept once its read returns, so a changed
grant applies to every VideoJob admitted after that. (A watch-fed cache would need `list`/`watch` on all Namespaces.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes.client.rest import ApiException

from videojob import policy
from videojob.api.models import VideoJob
from videojob.controller.kube import api_call

log = logging.getLogger(__name__)

async def namespace_annotations(core: Any, namespace: str) -> dict[str, str]:
    """The Namespace's annotations; empty when it cannot be read (then nothing is granted)."""
    try:
        ns = await api_call(core.read_namespace, namespace)
    except ApiException as exc:
        log.warning("cannot read Namespace %s (HTTP %s); it is granted no other project", namespace, exc.status)
        return {}
    return dict((ns.metadata.annotations if ns.metadata else None) or {})


class SharedReads:
    """One read per key at a time: callers that arrive while it is in flight await the same answer."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future] = {}

    async def get(self, key: str, read: Any) -> Any:
        """`read()` (a coroutine function) for `key`, or the answer of the one in flight."""
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(read())
            self._inflight[key] = pending
            pending.add_done_callback(lambda _done: self._inflight.pop(key, None))
        return await asyncio.shield(pending)  # a cancelled caller does not cancel the others' read


class TenancyGate:
    """The admission check of one operator: `admit(job, namespace)` -> Denial or None."""

    def __init__(self, settings: Any, core: Any):
        self.policy = policy.TenancyPolicy.from_settings(settings)
        self.default_model = settings.llm_model
        self.core = core
        self.namespaces = SharedReads()
        # Job mode: the operator holds no Secret rights at all; the worker's labelled read refuses
        # an unlabelled Secret when the run starts.
        self.secret_denial = None
        if settings.executor == "inline":
            from videojob.controller.inline_admission import secret_denial

            self.secret_denial = secret_denial

    async def admit(self, job: VideoJob, namespace: str) -> policy.Denial | None:
        annotations = None
        if policy.project_needs_namespace(job, namespace):
            annotations = await self.namespaces.get(namespace, lambda: namespace_annotations(self.core, namespace))
        denial = policy.check(job, namespace, self.policy, default_model=self.default_model,
                              namespace_annotations=annotations)
        if denial is None and self.secret_denial is not None:
            denial = await self.secret_denial(self.core, job, namespace)
        return denial

"""Kopf handlers for VideoJob and the `Controller` they call.

Handlers are a few lines: they hand the object to the controller and return (a long handler
would hold up that object's later events, its deletion included). The controller validates,
then gives the run to the executor. Nothing here deletes a VideoJob or edits its spec; the only
writes are `.status`, Events, and one annotation (see `decisions.CONTENT_GENERATION`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from videojob import metrics
from videojob.api.manifest import InvalidVideoJob, check_runnable, parse_videojob
from videojob.api.models import API_GROUP, API_VERSION, PLURAL, VideoJob
from videojob.config import Settings
from videojob.controller import decisions, reporter as rules
from videojob.controller.events import EventRecorder
from videojob.controller.executor import Executor, RunRequest
from videojob.controller.kube import plain
from videojob.controller.metrics import JobBook
from videojob.controller.reporter import StatusReporter
from videojob.controller.tenancy import TenancyGate
from videojob.logs import remember_object
from videojob.pipeline.status import StatusTracker
from videojob.policy import REASON as POLICY_DENIED

log = logging.getLogger(__name__)

_SOME_MODEL = object()  # "an LLM is configured" for check_runnable, without building a client


class Controller:
    def __init__(self, settings: Settings, kube: Any, executor: Executor, events: EventRecorder, book: JobBook,
                 tenancy: TenancyGate | None = None):
        self.settings = settings
        self.tenancy = tenancy or TenancyGate(settings, kube.core)
        self.kube = kube
        self.executor = executor
        self.events = events
        self.book = book
        self._seen: dict[str, int] = {}  # by uid: when its first event arrived (see `observed`)
        self._seq = itertools.count()

    # ---------------------------------------------------------------------------- causes

    async def created(self, body: Mapping[str, Any]) -> None:
        await self._start(plain(body))

    async def resumed(self, body: Mapping[str, Any]) -> None:
        raw = plain(body)
        if decisions.needs_run(raw):
            await self._start(raw, restarting=decisions.same_run(raw))

    async def spec_changed(self, body: Mapping[str, Any], diff: Any) -> None:
        raw = plain(body)
        meta = raw["metadata"]
        generation = int(meta.get("generation") or 1)
        suspend = bool((raw.get("spec") or {}).get("suspend"))
        if decisions.only_suspend_changed(diff):
            run = self.executor.live(meta["uid"])
            if run is not None:
                run.observe(generation, suspend)
                await self._remember_content_generation(raw, run.content_generation)
                if run.resumes_from_body and not suspend:
                    # Not a run but what an executor keeps while a VideoJob waits (Job mode:
                    # suspended before its Job existed): resumed, its run starts from this body.
                    await self._start(raw, restarting=True)
                return
            status = raw.get("status") or {}
            if decisions.is_terminal(status.get("phase")):
                # Nothing to pause or resume: acknowledge the generation, keep the result.
                await self._remember_content_generation(raw, decisions.content_generation(raw))
                await rules.acknowledge_generation(self.kube, meta["namespace"], meta["name"], generation)
                return
            await self._start(raw, restarting=decisions.same_run(raw))
            return
        if decisions.CONTENT_GENERATION in (meta.get("annotations") or {}):
            await self.kube.patch_metadata(meta["namespace"], meta["name"], {"annotations": {decisions.CONTENT_GENERATION: None}})
            meta["annotations"].pop(decisions.CONTENT_GENERATION)
        await self._start(raw)

    async def deleted(self, body: Mapping[str, Any]) -> None:
        await self.executor.cancel(body["metadata"]["uid"])

    def observed(self, event: Mapping[str, Any]) -> None:
        body = event.get("object") or {}
        self.book.observe(event.get("type"), body)
        uid = body.get("metadata", {}).get("uid")
        if event.get("type") == "DELETED":
            self._seen.pop(uid, None)
        elif uid not in self._seen:
            # creationTimestamp has only 1 s resolution. Within a second, order by the arrival
            # of each object's first event: a watch delivers events in write order, and Kopf
            # starts the objects' workers in that order, this handler being their first step.
            # (Not by resourceVersion: it is opaque, only equality means anything.)
            self._seen[uid] = next(self._seq)
        remember_object(body)  # Kopf's lines about this object get its generation too

    # --------------------------------------------------------------------------- helpers

    async def _start(self, raw: dict[str, Any], *, restarting: bool = False) -> None:
        meta = raw["metadata"]
        if not restarting and not decisions.needs_run(raw):
            # A handler replayed for a generation that already finished (Kopf retries when it
            # cannot store its own state, e.g. annotations over 256 KiB): its result stands.
            log.info("%s/%s: generation %s already finished (%s); not run again", meta["namespace"], meta["name"],
                     meta.get("generation"), (raw.get("status") or {}).get("phase"))
            return
        try:
            job = self.validate(raw)
        except InvalidVideoJob as exc:
            await self.executor.cancel(meta["uid"])
            await self._reject(raw, "InvalidSpec", "invalid spec: " + "; ".join(exc.problems))
            return
        denial = await self.tenancy.admit(job, meta["namespace"])
        if denial is not None:  # before anything is read, spent or written for the run
            await self.executor.cancel(meta["uid"])
            metrics.record_policy_denial(denial.rule)
            await self._reject(raw, POLICY_DENIED, f"policy: {denial}")
            return
        content_generation = decisions.content_generation(raw)
        job.metadata.generation = content_generation
        await self.executor.submit(
            RunRequest(
                namespace=meta["namespace"],
                name=meta["name"],
                uid=meta["uid"],
                generation=int(meta.get("generation") or 1),
                content_generation=content_generation,
                job=job,
                queue_key=(decisions.queue_key(raw), self._seen.get(meta["uid"], next(self._seq))),
                previous_status=raw.get("status") or {},
                restarting=restarting,
            )
        )

    def validate(self, raw: dict[str, Any]) -> VideoJob:
        """The checks the CRD schema cannot express. Raises InvalidVideoJob naming the fields."""
        document = {key: raw[key] for key in ("apiVersion", "kind", "metadata", "spec") if key in raw}
        job = parse_videojob(document)
        model_configured = bool((job.spec.llm and job.spec.llm.model) or self.settings.llm_model)
        check_runnable(job, _SOME_MODEL if model_configured else None)
        return job

    async def _reject(self, raw: dict[str, Any], reason: str, message: str) -> None:
        """Failed + Stalled with `message`, one Warning Event; no retry loop."""
        meta = raw["metadata"]
        previous = raw.get("status") or {}
        tracker = StatusTracker(int(meta.get("generation") or 1))
        tracker.rejected(reason, message)
        metrics.record_failure("Validation", reason)
        # Already reported for this generation (the handler ran again): no second Event.
        shown = previous.get("phase") if previous.get("observedGeneration") == meta.get("generation") else None
        ref = {"namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid")}
        reporter = StatusReporter(self.kube, self.events, ref, tracker.as_dict, phase=shown, previous=previous)
        await reporter.publish(now=True)
        await reporter.close()

    async def _remember_content_generation(self, raw: dict[str, Any], content_generation: int) -> None:
        meta = raw["metadata"]
        annotations = meta.get("annotations") or {}
        generation = int(meta.get("generation") or 1)
        wanted = None if content_generation == generation else str(content_generation)
        if annotations.get(decisions.CONTENT_GENERATION) != wanted:
            await self.kube.patch_metadata(meta["namespace"], meta["name"], {"annotations": {decisions.CONTENT_GENERATION: wanted}})
            meta["annotations"] = {**annotations, decisions.CONTENT_GENERATION: wanted}
            if wanted is None:
                meta["annotations"].pop(decisions.CONTENT_GENERATION)


class _QuietObserver(logging.Filter):
    """Kopf logs every event handler call at INFO; the bookkeeping one runs on every status write."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Handler 'observe'")


_QUIET = _QuietObserver()


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """Register the VideoJob handlers on `registry`."""
    logging.getLogger("kopf.objects").addFilter(_QUIET)  # idempotent: the same filter object
    resource = dict(group=API_GROUP, version=API_VERSION, plural=PLURAL)

    @kopf.on.login(registry=registry, id="login")
    def on_login(**_: Any) -> kopf.ConnectionInfo:
        # The same credentials as the operator's own client (in-cluster, else KUBECONFIG).
        return controller.kube.connection_info()

    @kopf.on.cleanup(registry=registry, id="stop-runs")
    async def on_cleanup(**_: Any) -> None:
        # Stop runs at once on shutdown (their render children die with them); the next
        # operator resumes them. Nothing is written: the status stays as the run left it.
        await controller.executor.shutdown()

    @kopf.on.create(**resource, registry=registry, id="create")
    async def on_create(body: kopf.Body, **_: Any) -> None:
        await controller.created(body)

    @kopf.on.resume(**resource, registry=registry, id="resume")
    async def on_resume(body: kopf.Body, **_: Any) -> None:
        await controller.resumed(body)

    @kopf.on.update(**resource, field="spec", registry=registry, id="spec")
    async def on_spec(body: kopf.Body, diff: kopf.Diff, **_: Any) -> None:
        await controller.spec_changed(body, diff)

    # No finalizer: a VideoJob holds nothing outside the cluster that must be cleaned up before it
    # goes (worker Jobs carry ownerReferences and are garbage-collected; S3 objects and DynamoDB
    # items outlive it on purpose), so deletion is never blocked by the operator and a new object
    # costs no finalizer PATCH before its create handler runs. A run is stopped when the deletion
    # is seen: `deletionTimestamp` while something else holds the object (optional handler), or
    # the DELETED event (below). Kopf removes the finalizer earlier versions added
    # (`videogen.io/finalizer`, main.kopf_settings) as soon as it sees such an object.
    @kopf.on.delete(**resource, registry=registry, id="delete", optional=True)
    async def on_delete(body: kopf.Body, **_: Any) -> None:
        await controller.deleted(body)

    @kopf.on.event(**resource, registry=registry, id="observe")
    async def on_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.observed(event)
        if event.get("type") == "DELETED":
            await controller.deleted(event["object"])

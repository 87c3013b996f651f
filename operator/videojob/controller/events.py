"""Kubernetes Events for VideoJobs: one at every phase change and every failure.

`transition_event` is pure (which Event a phase change deserves); `EventRecorder` posts it.
Posting is best effort: a lost Event never stops a run. Messages come from status messages,
which never hold credentials.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from videojob.api.models import API_GROUP, API_VERSION, KIND

log = logging.getLogger(__name__)

COMPONENT = "videojob-operator"
NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class JobEvent:
    type: str
    reason: str
    message: str


def transition_event(old_phase: str | None, status: dict[str, Any]) -> JobEvent | None:
    """The Event for a change from `old_phase` to `status["phase"]`, or None if nothing changed."""
    phase = status.get("phase")
    if phase is None or phase == old_phase:
        return None
    message = status.get("message") or ""
    succeeded = next((c for c in status.get("conditions", []) if c.get("type") == "Succeeded"), {})
    if phase == "Pending":
        if (status.get("attempt") or 1) > 1 and old_phase not in (None, "Suspended"):
            return JobEvent(WARNING, "BackOff", message)
        return JobEvent(NORMAL, "Queued", message or "waiting for a free slot")
    if phase == "Running":
        return JobEvent(NORMAL, "Resumed" if old_phase == "Suspended" else "Started", message or "the pipeline is running")
    if phase == "Suspended":
        return JobEvent(NORMAL, "Suspended", message)
    if phase == "Succeeded":
        return JobEvent(NORMAL, "Succeeded", message)
    if phase == "Failed":
        return JobEvent(WARNING, succeeded.get("reason") or "Failed", message)
    if phase == "AwaitingInput":
        return JobEvent(WARNING, "AwaitingInput", message)
    return JobEvent(NORMAL, phase, message)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(ref: dict[str, Any], event: JobEvent, instance: str) -> dict[str, Any]:
    now = _now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref['name']}.{uuid.uuid4().hex[:16]}", "namespace": ref["namespace"]},
        "involvedObject": {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": KIND,
            "name": ref["name"],
            "namespace": ref["namespace"],
            "uid": ref.get("uid"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "action": event.reason,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, kube: Any):
        self.kube = kube
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()

    async def post(self, ref: dict[str, Any], event: JobEvent) -> None:
        try:
            await self.kube.create_event(ref["namespace"], event_body(ref, event, self.instance))
        except Exception as exc:  # Events are auxiliary: log and go on
            log.warning("could not post Event %s for %s/%s: %s", event.reason, ref["namespace"], ref["name"], exc)

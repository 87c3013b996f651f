"""Pure parts of the controller: decisions, Events, the queue, the status writer."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes.client.rest import ApiException

from tests.helpers import wait_for
from videojob.api.models import Backoff
from videojob.controller import decisions
from videojob.controller.events import transition_event
from videojob.controller.reporter import same_writer
from videojob.controller.slots import FairSlots
from videojob.controller.status_writer import StatusWriter, nulls_for_removed


def body(generation=1, status=None, annotations=None):
    return {"metadata": {"generation": generation, "annotations": annotations or {}}, "status": status or {}}


def test_only_a_suspend_toggle_keeps_the_run():
    assert decisions.only_suspend_changed([("change", ("suspend",), False, True)])
    assert not decisions.only_suspend_changed([("change", ("suspend",), False, True), ("change", ("topic",), "a", "b")])
    assert not decisions.only_suspend_changed([])


def test_content_generation_survives_suspend_toggles_only():
    assert decisions.content_generation(body(3)) == 3
    assert decisions.content_generation(body(3, annotations={decisions.CONTENT_GENERATION: "2"})) == 2
    assert decisions.content_generation(body(3, annotations={decisions.CONTENT_GENERATION: "7"})) == 3


@pytest.mark.parametrize(("status", "generation", "expected"), [
    ({}, 1, True),
    ({"observedGeneration": 1, "phase": "Succeeded"}, 1, False),
    ({"observedGeneration": 1, "phase": "Succeeded"}, 2, True),
    ({"observedGeneration": 2, "phase": "Running"}, 2, True),
    ({"observedGeneration": 2, "phase": "AwaitingInput"}, 2, False),
])
def test_restart_reruns_only_unfinished_generations(status, generation, expected):
    assert decisions.needs_run(body(generation, status)) is expected


def test_backoff_grows_and_is_capped():
    backoff = Backoff(duration_seconds=10, factor=2, max_duration_seconds=35)
    assert [decisions.backoff_seconds(backoff, n) for n in (1, 2, 3, 4)] == [10, 20, 35, 35]


def test_events_name_the_transition():
    assert transition_event(None, {"phase": "Running"}).reason == "Started"
    assert transition_event("Suspended", {"phase": "Running"}).reason == "Resumed"
    assert transition_event("Running", {"phase": "Running"}) is None
    failed = transition_event("Running", {"phase": "Failed", "message": "m", "conditions": [
        {"type": "Succeeded", "status": "False", "reason": "DeadlineExceeded"}]})
    assert (failed.type, failed.reason, failed.message) == ("Warning", "DeadlineExceeded", "m")
    assert transition_event("Running", {"phase": "Pending", "attempt": 2}).reason == "BackOff"


def test_merge_patch_clears_fields_of_the_previous_generation():
    old = {"phase": "Succeeded", "completionTime": "t", "outputs": {"videoURI": "a", "sha256": "x"}}
    new = {"phase": "Running", "outputs": {"videoURI": "b"}}
    assert nulls_for_removed(old, new) == {"completionTime": None, "phase": "Running",
                                           "outputs": {"sha256": None, "videoURI": "b"}}


async def test_slots_go_to_the_earliest_created_waiter():
    slots = FairSlots(1)
    assert slots.try_acquire()
    order = []

    async def waiter(key):
        await slots.acquire(key)
        order.append(key)
        slots.release()

    tasks = [asyncio.create_task(waiter(key)) for key in [("b", 0), ("c", 0), ("a", 1), ("a", 0)]]
    await wait_for(lambda: slots.waiting == 4, message="all four in line")
    slots.release()
    await asyncio.gather(*tasks)
    assert order == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]


class Sink:
    def __init__(self):
        self.patches = []

    async def patch_status(self, namespace, name, status):
        self.patches.append(status)
        return {"status": status}


async def test_status_writer_coalesces_bursts_and_flushes_the_last_state():
    sink, state = Sink(), {"progress": "0/10"}
    writer = StatusWriter(sink, "ns", "job", lambda: dict(state), min_interval=0.2, coalesce=0.01)
    for step in range(1, 11):
        state["progress"] = f"{step}/10"
        writer.update()
    await wait_for(lambda: sink.patches, message="the first write")
    await writer.close()
    assert len(sink.patches) <= 2
    assert sink.patches[-1]["progress"] == "10/10"


class VersionedSink:
    """A status sink with resourceVersion preconditions, as the API server has (409 when stale)."""

    def __init__(self, status):
        self.status, self.rv, self.conflicts = dict(status), 1, 0

    def someone_writes(self, **changes):
        self.status.update(changes)
        self.rv += 1

    async def patch_status(self, namespace, name, status, resource_version=None):
        if resource_version is not None and resource_version != str(self.rv):
            self.conflicts += 1
            raise ApiException(status=409, reason="Conflict")
        self.status = {k: v for k, v in {**self.status, **status}.items() if v is not None}
        self.rv += 1
        return {"metadata": {"resourceVersion": str(self.rv)}, "status": self.status}

    async def read_videojob(self, namespace, name):
        return {"metadata": {"resourceVersion": str(self.rv)}, "status": dict(self.status)}


async def test_status_writer_writes_again_when_only_metadata_changed():
    sink = VersionedSink({"phase": "Running", "attempt": 1})
    state = {"phase": "Running", "attempt": 1, "progress": "1/2"}
    writer = StatusWriter(sink, "ns", "job", lambda: dict(state), previous=dict(sink.status), resource_version="1",
                          on_conflict=same_writer)
    sink.rv += 1  # a label or annotation changed: the object moved, its status did not
    await writer.flush()
    assert sink.conflicts == 1 and sink.status["progress"] == "1/2" and not writer.yielded


async def test_a_worker_writer_stops_once_someone_else_wrote_the_status():
    sink = VersionedSink({"phase": "Running", "attempt": 1})
    state = {"phase": "Running", "attempt": 1, "progress": "1/2"}
    writer = StatusWriter(sink, "ns", "job", lambda: dict(state), previous=dict(sink.status), resource_version="1",
                          on_conflict=same_writer)
    sink.someone_writes(phase="Suspended")  # the operator, on spec.suspend
    state.update(progress="2/2", phase="Succeeded")
    await writer.flush()
    assert writer.yielded and sink.status["phase"] == "Suspended"
    writer.update(important=True)
    await writer.flush()
    assert sink.conflicts == 1  # no further attempt


async def test_an_operator_writer_rebuilds_its_change_on_top_of_a_conflicting_write():
    sink = VersionedSink({"phase": "Running", "attempt": 1})
    state = {"phase": "Suspended", "attempt": 1}
    seen = []

    def rebuild(current, written):
        seen.append(current["phase"])
        state.update({**current, "phase": "Suspended"})
        return True

    writer = StatusWriter(sink, "ns", "job", lambda: dict(state), previous=dict(sink.status), resource_version="1",
                          on_conflict=rebuild)
    sink.someone_writes(progress="2/2")  # the worker, between our read and our write
    await writer.flush()
    assert seen == ["Running"] and sink.status == {"phase": "Suspended", "attempt": 1, "progress": "2/2"}

"""What a real API server does that the emulator long did not (issue 12), and what the operator
does about it. Each behaviour is taught to the emulator (`apiserver.py`) so a regression shows."""

from __future__ import annotations

import datetime
import json
import logging
import urllib.request

import kubernetes

from tests.controller.conftest import NAMESPACE, scene_code
from tests.helpers import status_writes, wait_until
from videojob.controller.leader import LeadershipLost


def test_a_finished_generation_stands_when_kopf_cannot_store_its_state(operator, kube, apiserver, workdir, caplog):
    """All annotations share 256 KiB. Here `kubectl apply`'s copy of the object leaves Kopf no
    room for its own (the spec itself is bounded by the CRD), so Kopf cannot store its state
    and replays the create handler on every event: the finished generation must stand."""
    caplog.set_level(logging.INFO, logger="videojob.controller.handlers")
    operator()
    key = "kubectl.kubernetes.io/last-applied-configuration"
    applied = {key: "x" * (256 * 1024 - len(key) - 100)}  # fits, 100 bytes to spare: not Kopf's state
    kube.custom.create_namespaced_custom_object("videogen.io", "v1alpha1", NAMESPACE, "videojobs", {
        "apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob", "metadata": {"name": "huge", "annotations": applied},
        "spec": {"topic": "Huge", "code": scene_code(1), "render": {"quality": "low"}}})
    status = kube.wait_phase("huge", "Succeeded", "Failed", timeout=120)["status"]
    assert status["phase"] == "Succeeded", status.get("message")

    # Kopf could not store its state, so it replays the create handler on the next event (the
    # Succeeded write's own): the operator sees the finished generation and says it stands.
    wait_until(lambda: any("already finished" in r.getMessage() and "huge" in r.getMessage() for r in caplog.records),
               60, "the create handler replayed after Succeeded")
    rejected = apiserver.call(lambda server: [name for _, name, _ in server.annotation_rejections])
    assert "huge" in rejected, "the premise: the API server refused Kopf's annotation"
    writes = status_writes(apiserver.history(NAMESPACE, "huge"))
    first = next(i for i, w in enumerate(writes) if w.get("phase") == "Succeeded")
    assert [w["phase"] for w in writes[first:]] == ["Succeeded"] * (len(writes) - first), "re-run after Succeeded"
    records = [json.loads(p.read_text()) for p in workdir.glob(f"{NAMESPACE}/huge/v*/record.json")]
    assert [r["version"] for r in records] == [1]


def lease_holder(kube) -> str | None:
    try:
        lease = kubernetes.client.CoordinationV1Api(kube.client).read_namespaced_lease("videojob-operator", NAMESPACE)
    except kubernetes.client.ApiException:
        return None
    return lease.spec.holder_identity if lease.spec else None


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_only_the_lease_holder_handles_videojobs_and_a_standby_takes_over(operator, kube):
    first = operator(leader_election=True, options={"identity": "op-1"})
    wait_until(lambda: lease_holder(kube) == "op-1", 30, "op-1 holds the Lease")
    second = operator(leader_election=True, options={"identity": "op-2"}, wait=False)
    wait_until(lambda: second.controller is not None and answers(second.liveness_url), 30, "the standby answers /healthz")

    kube.create("led", {"topic": "Led", "code": scene_code(1), "render": {"quality": "low"}})
    assert kube.wait_phase("led", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"
    assert lease_holder(kube) == "op-1"
    assert not second.ready.is_set() and len(second.controller.book) == 0  # the standby saw nothing

    first.stop()  # a clean stop hands the Lease back: the standby leads at its next try
    assert second.ready.wait(30), "the standby did not take over"
    assert lease_holder(kube) == "op-2"
    kube.create("after", {"topic": "After", "code": scene_code(1), "render": {"quality": "low"}})
    assert kube.wait_phase("after", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"


def test_a_leader_that_loses_its_lease_stops_handling_videojobs(operator, kube):
    """A partitioned pod whose Lease another replica took over must not go on running work."""
    first = operator(leader_election=True, options={"identity": "op-1"})
    wait_until(lambda: lease_holder(kube) == "op-1", 30, "op-1 holds the Lease")
    api = kubernetes.client.CoordinationV1Api(kube.client)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api.patch_namespaced_lease("videojob-operator", NAMESPACE, {"spec": {"holderIdentity": "op-elsewhere", "renewTime": now}},
                               _content_type="application/merge-patch+json")
    wait_until(lambda: not first._thread.is_alive(), 30, "op-1 stopping")
    assert isinstance(first.error, LeadershipLost)
    assert lease_holder(kube) == "op-elsewhere"  # not taken back, nor released

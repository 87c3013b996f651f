"""Deleting VideoJobs: the operator never holds one back (no finalizer), stops its run when the
deletion is seen, and releases objects an earlier version marked with its finalizer."""

from __future__ import annotations

from tests.controller.conftest import GROUP, NAMESPACE, PLURAL, VERSION, scene_code, slow_scene_code
from tests.helpers import wait_until

OLD_FINALIZER = "videogen.io/finalizer"  # what earlier operator versions added to every VideoJob


def create_marked(kube, name: str, spec: dict) -> None:
    """A VideoJob as an earlier operator left it: carrying that operator's finalizer."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoJob",
            "metadata": {"name": name, "finalizers": [OLD_FINALIZER]}, "spec": spec}
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)


def test_a_new_videojob_carries_no_finalizer(operator, kube):
    operator()
    kube.create("plain", {"topic": "Plain", "code": scene_code(1), "render": {"quality": "low"}})
    obj = kube.wait_phase("plain", "Succeeded", "Failed")
    assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
    assert not obj["metadata"].get("finalizers")


def test_a_videojob_deleted_while_the_operator_is_down_is_gone_at_once(operator, kube):
    op = operator()
    kube.create("orphan", {"topic": "Orphan", "code": scene_code(1), "render": {"quality": "low"}})
    kube.wait_phase("orphan", "Succeeded", "Failed")
    op.stop()
    kube.delete("orphan")
    assert not kube.exists("orphan")  # no operator needed to let it go


def test_deleting_a_queued_job_cancels_its_run_and_frees_its_place(operator, kube):
    op = operator(max_concurrent_jobs=1)
    kube.create("holder", {"topic": "Holder", "code": slow_scene_code(60), "render": {"quality": "low"}})
    kube.wait("holder", lambda obj: (obj.get("status") or {}).get("currentStage") == "Rendering")
    kube.create("waiter", {"topic": "Waiter", "code": scene_code(1), "render": {"quality": "low"}})
    kube.wait_phase("waiter", "Pending")
    waiter = kube.get("waiter")["metadata"]["uid"]
    assert waiter in op.controller.executor.runs

    kube.delete("waiter")
    wait_until(lambda: waiter not in op.controller.executor.runs, message="the queued run stopped")
    assert op.controller.executor.env.slots.waiting == 0
    assert kube.status("holder")["phase"] == "Running"  # the others go on

    holder = kube.get("holder")["metadata"]["uid"]
    kube.delete("holder")
    wait_until(lambda: holder not in op.controller.executor.runs, message="the running run stopped")
    kube.create("next", {"topic": "Next", "code": scene_code(1), "render": {"quality": "low"}})
    assert kube.wait_phase("next", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"  # the slot came back


def test_an_upgrade_removes_the_old_finalizer_and_runs_the_job(operator, kube):
    create_marked(kube, "earlier", {"topic": "Earlier", "code": scene_code(1), "render": {"quality": "low"}})
    operator()
    obj = kube.wait("earlier", lambda o: not o["metadata"].get("finalizers"))
    assert obj["metadata"]["name"] == "earlier"
    assert kube.wait_phase("earlier", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"


def test_an_old_videojob_deleted_before_the_upgrade_is_released(operator, kube):
    create_marked(kube, "stuck", {"topic": "Stuck", "code": scene_code(1), "suspend": True})
    kube.delete("stuck")
    assert kube.get("stuck")["metadata"].get("deletionTimestamp")  # held by the old finalizer
    operator()
    kube.wait("stuck", lambda obj: obj == {}, timeout=30)


def _vanish(server, namespace: str, name: str) -> None:
    """Take a VideoJob out of the store without a DELETED event: what an operator sees when its
    watch lost its place (410 Gone) across the deletion and the re-list no longer has it."""
    for key in list(server.objects):
        resource, ns, obj_name = key
        if getattr(resource, "plural", None) == PLURAL and (ns, obj_name) == (namespace, name):
            server.objects[key].delete()
            return
    raise AssertionError(f"no VideoJob {namespace}/{name} in the store")


def test_a_deletion_the_watch_never_delivered_still_publishes_nothing(operator, kube, apiserver, workdir):
    op = operator()
    kube.create("unseen", {"topic": "Unseen", "code": slow_scene_code(3), "render": {"quality": "low"}})
    kube.wait("unseen", lambda obj: (obj.get("status") or {}).get("currentStage") == "Rendering")
    uid = kube.get("unseen")["metadata"]["uid"]
    apiserver.call(_vanish, NAMESPACE, "unseen")
    assert not kube.exists("unseen")

    wait_until(lambda: uid not in op.controller.executor.runs, timeout=120, message="the run ended")
    assert not list(workdir.glob("default/unseen/v*"))  # no version, not even a half-written one
    kube.create("after", {"topic": "After", "code": scene_code(1), "render": {"quality": "low"}})
    assert kube.wait_phase("after", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"  # its slot came back

"""The global concurrency limit and the creation-order queue."""

from __future__ import annotations

from tests.controller.conftest import scene_code

SPEC = {"render": {"quality": "low"}}


def first_write(apiserver, history, predicate, **default) -> int:
    """The server's write order of the first version matching `predicate` (resourceVersions
    themselves are opaque: only the server knows their order)."""
    found = next((v for v in history if predicate(v.get("status") or {})), None)
    return apiserver.write_order(found) if found is not None else default["default"]


def test_twenty_jobs_run_two_at_a_time_in_creation_order(operator, kube, apiserver):
    operator(max_concurrent_jobs=2)
    names = [f"job-{i:02d}" for i in range(20)]
    for name in names:
        # Distinct code per job: no render-cache hits, every job really renders (about 1 s).
        kube.create(name, {"topic": name, "code": scene_code(0.5 + int(name[-2:]) / 100), **SPEC})
    for name in names:
        status = kube.wait_phase(name, "Succeeded", "Failed", timeout=240)["status"]
        assert status["phase"] == "Succeeded", status.get("message")

    histories = {name: apiserver.history("default", name) for name in names}
    # The API server's write order: when each job queued, started, ended.
    started = {n: first_write(apiserver, h, lambda s: s.get("phase") == "Running", default=None) for n, h in histories.items()}
    ended = {n: first_write(apiserver, h, lambda s: s.get("phase") == "Succeeded", default=None) for n, h in histories.items()}
    queued = {n: first_write(apiserver, h, lambda s: s.get("phase") == "Pending", default=None) for n, h in histories.items()}
    # First in, first out: no job runs while an older one is waiting in the queue. A slot's grant
    # is not a write (a Running write can land after another job's Pending write although the
    # slot was granted first), so an overtake is proven only between two jobs that both waited:
    # the older was already waiting when the newer began to wait, yet the newer finished before
    # the older started. A LIFO queue fails this.
    for i, older in enumerate(names):
        for newer in names[i + 1:]:
            if ended[newer] < started[older] and queued[older] is not None and queued[newer] is not None:
                assert queued[older] > queued[newer], f"{newer} overtook {older}"
    assert sum(1 for n in names if queued[n] is not None) >= 17  # nearly all had to wait
    for name in names:
        running = [m for m in names if started[m] <= started[name] < ended[m]]
        assert len(running) <= 2, f"{running} ran at once"
    # Those that had to wait said so: phase Pending, stage Queued, with observedGeneration.
    for name in names:
        if queued[name] is not None:
            first = next(v["status"] for v in histories[name] if v.get("status"))
            assert (first["phase"], first["currentStage"], first["observedGeneration"]) == ("Pending", "Queued", 1)
    assert {s["version"] for s in (kube.status(n) for n in names)} == {1}

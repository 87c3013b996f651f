"""The inline operator's footprint: what its process loads, and what it keeps per waiting VideoJob.

- Start-up loads no pipeline library (LangGraph, NumPy, Pillow, boto3, Manim, PyAV): a run loads
  what it needs when it needs it. A code-only VideoJob renders (PyAV reads the untrusted render's
  output in the operator) but calls no model and speaks nothing, so LangGraph never loads: it
  would stay resident in the operator for good. Checked on the real `videojob operator` process
  under `python -X importtime`, which names every module whenever it is imported.
- A VideoJob suspended before its run ever started is kept as a small record, not a waiting task
  with its tracker and reporter; resumed, it runs as it would have (same status, events, queue
  order, version).
"""

from __future__ import annotations

import os

from tests.controller.conftest import scene_code, slow_scene_code
from tests.helpers import wait_until
from tests.importwatch import imported_modules, loaded, operator_under_importtime

# Loaded by no inline operator before a run needs it (nor by a run that calls no model and speaks nothing).
NOT_AT_START = {"langgraph", "langchain_core", "langsmith", "numpy", "PIL", "pysbd", "boto3", "botocore", "manim", "av",
                "videojob.pipeline.llm", "videojob.pipeline.narration.mux", "videojob.pipeline.narration.burnin"}
NOT_FOR_A_CODE_ONLY_RUN = NOT_AT_START - {"av"}


def test_inline_operator_loads_no_pipeline_library_at_start_and_no_langgraph_for_a_code_only_run(apiserver, kube, tmp_path):
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "VIDEOJOB_WORKDIR": str(tmp_path / "work"),
           "VIDEOJOB_EXECUTOR": "inline"}
    log_path = tmp_path / "operator.log"
    with operator_under_importtime(env, log_path):
        at_start = imported_modules(log_path.read_text())
        kube.create("circle", {"topic": "Circle", "code": scene_code(1), "render": {"quality": "low"}})
        status = kube.wait_phase("circle", "Succeeded", "Failed", timeout=180)["status"]
        assert status["phase"] == "Succeeded", status.get("message")
    after_run = imported_modules(log_path.read_text())
    assert "videojob.controller.inline_executor" in at_start  # the log is an inline operator's
    assert loaded(at_start, NOT_AT_START) == [], "the inline operator imported these at start-up"
    assert "av" in after_run  # the scene really rendered: its output was checked in the operator
    assert loaded(after_run, NOT_FOR_A_CODE_ONLY_RUN) == [], "a code-only run imported these"


def test_a_videojob_suspended_before_it_started_is_a_record_and_resumes_in_creation_order(operator, kube, apiserver):
    from videojob.controller.inline_executor import ParkedRun

    op = operator(max_concurrent_jobs=1)
    names = ["first", "second", "third"]
    uids = {}
    for name in names:
        uids[name] = kube.create(name, {"topic": name, "code": scene_code(1), "render": {"quality": "low"}, "suspend": True})["metadata"]["uid"]
    for name in names:
        assert kube.wait_phase(name, "Suspended")["status"].get("startTime") is None
    runs = op.controller.executor.runs
    wait_until(lambda: all(isinstance(runs.get(uid), ParkedRun) for uid in uids.values()),
               timeout=30, message="every suspended VideoJob kept as a record")
    assert all(runs[uid].task is None for uid in uids.values())  # no coroutine waits for them

    # The one slot is taken; resumed newest first, they wait and then run oldest first.
    kube.create("blocker", {"topic": "Blocker", "code": slow_scene_code(5), "render": {"quality": "low"}})
    kube.wait_phase("blocker", "Running")
    for name in reversed(names):
        kube.patch_spec(name, {"suspend": False})
    ended = {}
    for name in names:
        obj = kube.wait(name, lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"), timeout=180)
        assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
        assert obj["status"]["version"] == 1
        history = apiserver.history("default", name)
        ended[name] = apiserver.write_order(next(v for v in history if (v.get("status") or {}).get("phase") == "Succeeded"))
        events = [e["reason"] for e in kube.events(name) if e["component"] == "videojob-operator"]
        assert events[0] == "Suspended" and events[-1] == "Succeeded"
    assert sorted(names, key=ended.get) == names  # creation order, whatever the resume order
    wait_until(lambda: not any(uid in runs for uid in uids.values()), timeout=30, message="finished runs forgotten")


def test_a_parked_videojob_is_deleted_or_edited_like_a_waiting_one(operator, kube, workdir):
    from videojob.controller.inline_executor import ParkedRun

    op = operator()
    gone = kube.create("gone", {"topic": "Gone", "code": scene_code(1), "suspend": True})["metadata"]["uid"]
    edited = kube.create("edited", {"topic": "Edited", "code": scene_code(1), "render": {"quality": "low"}, "suspend": True})
    runs = op.controller.executor.runs
    wait_until(lambda: isinstance(runs.get(gone), ParkedRun) and isinstance(runs.get(edited["metadata"]["uid"]), ParkedRun),
               timeout=30, message="both kept as records")

    kube.delete("gone")
    wait_until(lambda: gone not in runs, timeout=30, message="the deleted VideoJob's record dropped")

    # A content edit while parked: a new run for the new generation, not the parked one.
    kube.patch_spec("edited", {"topic": "Edited again", "suspend": False})
    obj = kube.wait("edited", lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"), timeout=180)
    assert obj["status"]["phase"] == "Succeeded", obj["status"].get("message")
    assert obj["status"]["observedGeneration"] == 2
    assert "videogen.io/content-generation" not in (obj["metadata"].get("annotations") or {})

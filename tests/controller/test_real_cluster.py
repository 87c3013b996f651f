"""What a real API server does that the emulator long did not (issue 12), and what the operator
does about it. Each behaviour is taught to the emulator (`apiserver.py`) so a regression shows."""

from __future__ import annotations

import json
import logging

from tests.controller.conftest import NAMESPACE, scene_code
from tests.helpers import status_writes, wait_until


def test_a_spec_too_large_for_kopfs_annotation_is_produced_once(operator, kube, apiserver, workdir, caplog):
    """Kopf keeps the spec in an annotation; all annotations share 256 KiB. Kopf cannot store its
    state and replays the create handler on every event: the finished generation must stand."""
    caplog.set_level(logging.INFO, logger="videojob.controller.handlers")
    operator()
    code = scene_code(1) + "\n# " + "字" * 100_000 + "\n"  # ~300 KB of UTF-8, more as Kopf's JSON
    kube.create("huge", {"topic": "Huge", "code": code, "render": {"quality": "low"}})
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

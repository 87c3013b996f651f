"""gitops/argocd/health.lua, run by a real Lua interpreter (Debian `lua5.4`) over sample VideoJobs the way
Argo CD runs it: the script sees a global `obj` and returns {status, message}."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.conftest import ROOT

HEALTH = ROOT / "gitops" / "argocd" / "health.lua"
LUA = shutil.which("lua5.4") or "/usr/bin/lua5.4"


def lua_literal(value: Any) -> str:
    """A Python value (decoded JSON) as a Lua table constructor."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isalnum() or c in " :/._-" else f"\\{ord(c)}" for c in value) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def health(obj: dict[str, Any]) -> tuple[str, str]:
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = dofile({lua_literal(str(HEALTH))})\n"
        'io.write(hs.status, "\\n", hs.message or "", "\\n")\n'
    )
    proc = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    status, message = proc.stdout.split("\n", 1)
    return status, message.rstrip("\n")


def cond(type_: str, status: str, reason: str = "", message: str = "", generation: int = 2) -> dict[str, Any]:
    return {
        "type": type_, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def videojob(status: dict[str, Any] | None, generation: int = 2, suspend: bool = False) -> dict[str, Any]:
    obj = {
        "apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
        "metadata": {"name": "fourier", "namespace": "videos", "generation": generation},
        "spec": {"topic": "Fourier series", "suspend": suspend},
    }
    if status is not None:
        obj["status"] = status
    return obj


RUNNING = {
    "observedGeneration": 2, "phase": "Running", "currentStage": "Rendering", "progress": "3/7",
    "conditions": [
        cond("Succeeded", "Unknown", "Running", "the pipeline is running"),
        cond("Reconciling", "True", "Running"), cond("Stalled", "False", "Running"),
        cond("Suspended", "False", "NotSuspended"),
    ],
}
SUCCEEDED = {
    "observedGeneration": 2, "phase": "Succeeded", "currentStage": "Done", "version": 2,
    "outputs": {"videoURI": "s3://videos/videos/demo/fourier/v2/fourier.mp4"},
    "conditions": [
        cond("Succeeded", "True", "Completed", "video v2 ready"), cond("Reconciling", "False", "Completed"),
        cond("Stalled", "False", "Completed"), cond("Suspended", "False", "NotSuspended"),
    ],
}
FAILED = {
    "observedGeneration": 2, "phase": "Failed",
    "conditions": [
        cond("Succeeded", "False", "BackoffLimitExceeded", "rendering failed 3 times: NameError"),
        cond("Reconciling", "False", "BackoffLimitExceeded"), cond("Stalled", "True", "BackoffLimitExceeded"),
        cond("Suspended", "False", "NotSuspended"),
    ],
}
SUSPENDED = {
    "observedGeneration": 2, "phase": "Suspended",
    "conditions": [
        cond("Succeeded", "Unknown", "Queued"), cond("Reconciling", "False", "SuspendedBySpec"),
        cond("Suspended", "True", "SuspendedBySpec", "spec.suspend is true"),
    ],
}
AWAITING_INPUT = {
    "observedGeneration": 2, "phase": "AwaitingInput",
    "conditions": [
        cond("Succeeded", "Unknown", "CodeRepairExhausted", "fix the scene code or the prompt"),
        cond("Reconciling", "False", "AwaitingInput"),
        cond("Stalled", "True", "CodeRepairExhausted", "fix the scene code or the prompt"),
    ],
}
RETRYING = {
    "observedGeneration": 2, "phase": "Pending", "attempt": 2,
    "conditions": [
        cond("Succeeded", "Unknown", "UploadTimeout", "retrying in 20s"),
        cond("Reconciling", "True", "UploadTimeout", "retrying in 20s"), cond("Stalled", "False", "Running"),
    ],
}


def test_new_videojob_without_status_is_progressing():
    assert health(videojob(None)) == ("Progressing", "Waiting for the operator to pick up the VideoJob")


def test_running_videojob_is_progressing_with_stage_and_progress():
    assert health(videojob(RUNNING)) == ("Progressing", "Running Rendering 3/7")


def test_retrying_videojob_is_progressing():
    assert health(videojob(RETRYING))[0] == "Progressing"


def test_succeeded_videojob_is_healthy_and_names_the_video():
    assert health(videojob(SUCCEEDED)) == ("Healthy", "Version 2: s3://videos/videos/demo/fourier/v2/fourier.mp4")


def test_failed_videojob_is_degraded_with_the_reason():
    assert health(videojob(FAILED)) == ("Degraded", "rendering failed 3 times: NameError")


def test_videojob_waiting_for_a_person_is_degraded():
    assert health(videojob(AWAITING_INPUT)) == ("Degraded", "fix the scene code or the prompt")


def test_suspended_videojob_is_suspended():
    assert health(videojob(SUSPENDED, suspend=True)) == ("Suspended", "spec.suspend is true")


@pytest.mark.parametrize("old_status", [SUCCEEDED, FAILED, SUSPENDED], ids=["succeeded", "failed", "suspended"])
def test_status_of_an_older_generation_is_not_trusted(old_status):
    # The user edited the spec (generation 3); the operator has not written status for it yet.
    status, message = health(videojob(old_status, generation=3))
    assert (status, message) == ("Progressing", "Waiting for the operator to observe generation 3")


def test_status_without_observed_generation_is_not_trusted():
    status = {k: v for k, v in SUCCEEDED.items() if k != "observedGeneration"}
    assert health(videojob(status))[0] == "Progressing"


def test_stale_conditions_are_ignored_even_when_observed_generation_is_current():
    # First status write of generation 3 happened, but the Succeeded condition is still generation 2's.
    status = dict(SUCCEEDED, observedGeneration=3, phase="Pending", currentStage="Queued")
    assert health(videojob(status, generation=3)) == ("Progressing", "Pending Queued")


def test_phase_alone_decides_when_there_are_no_conditions():
    for phase, expected in [("Succeeded", "Healthy"), ("Failed", "Degraded"), ("Suspended", "Suspended"),
                            ("Running", "Progressing"), ("AwaitingInput", "Degraded")]:
        assert health(videojob({"observedGeneration": 2, "phase": phase}))[0] == expected, phase


def test_script_stays_within_lua_5_1_for_argo_cds_gopher_lua():
    source = HEALTH.read_text()
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    for construct in (r"//", r"\bgoto\b", r"<const>", r"<close>", r"[^~]~[^=]", r"&", r"\|", r"<<", r">>",
                      r"\butf8\.", r"math\.tointeger", r"table\.move", r"string\.pack", r"\brequire\b"):
        assert not re.search(construct, code), construct

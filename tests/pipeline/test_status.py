"""The status tracker: progress, stages and conditions from pipeline events (pure, no I/O)."""

from __future__ import annotations

from videojob.pipeline.progress import ProgressEvent
from videojob.pipeline.status import StatusTracker


def conditions(tracker):
    return {c.type: (c.status, c.reason) for c in tracker.status.conditions}


def test_first_status_carries_generation_and_reconciling():
    tracker = StatusTracker(generation=3)
    tracker.queued()
    status = tracker.as_dict()
    assert status["observedGeneration"] == 3
    assert status["phase"] == "Pending" and status["currentStage"] == "Queued"
    assert conditions(tracker)["Reconciling"] == ("True", "Queued")
    assert conditions(tracker)["Succeeded"][0] == "Unknown"
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_stage_events_drive_progress_and_stages():
    tracker = StatusTracker(generation=1)
    tracker.started()
    assert tracker.apply(ProgressEvent("stage_started", "Rendering", 3, 6)) is True
    assert tracker.apply(ProgressEvent("scene", "Rendering", 3, 6, "rendering scene 1", scene=0, scenes=1)) is False
    status = tracker.status
    assert status.current_stage == "Rendering" and status.progress == "3/6" and status.progress_percent == 50
    rendering = next(s for s in status.stages if s.name == "Rendering")
    assert rendering.phase == "Running" and rendering.attempts == 1 and rendering.message == "rendering scene 1"


def test_failure_is_stalled_only_when_permanent():
    permanent = StatusTracker(generation=1)
    permanent.failed("RenderFailed", "scene 1 failed", stalled=True)
    assert conditions(permanent)["Stalled"] == ("True", "RenderFailed")
    assert conditions(permanent)["Succeeded"] == ("False", "RenderFailed")
    transient = StatusTracker(generation=1)
    transient.failed("UploadFailed", "S3 down", stalled=False)
    assert conditions(transient)["Stalled"][0] == "False"


def test_transition_time_kept_while_status_unchanged():
    tracker = StatusTracker(generation=1)
    tracker.queued()
    tracker.status.conditions[0].last_transition_time = "2000-01-01T00:00:00Z"
    tracker.started()  # Succeeded stays Unknown: its transition time must not move
    succeeded = next(c for c in tracker.status.conditions if c.type == "Succeeded")
    assert succeeded.last_transition_time == "2000-01-01T00:00:00Z"
    tracker.succeeded("done")  # ...and moves when it changes
    succeeded = next(c for c in tracker.status.conditions if c.type == "Succeeded")
    assert succeeded.status == "True" and succeeded.last_transition_time != "2000-01-01T00:00:00Z"

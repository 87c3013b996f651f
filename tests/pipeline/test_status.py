"""The status tracker: progress, stages and conditions from pipeline events (pure, no I/O)."""

from __future__ import annotations

from videojob.api.models import Stage, VideoJobStatus
from videojob.pipeline.progress import Progress, ProgressEvent
from videojob.pipeline.stages import run_stages
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


def test_a_run_lists_its_stages_in_order_and_narrating_only_when_asked():
    assert [s.name for s in StatusTracker(generation=1).status.stages] == [
        "Planning", "GeneratingCode", "Rendering", "Combining", "Uploading", "Recording",
    ]
    assert run_stages(Stage.Narrating)[:3] == [Stage.Planning, Stage.Narrating, Stage.GeneratingCode]
    tracker = StatusTracker(generation=1)
    tracker.apply(ProgressEvent("stage_started", "Planning", 0, 5))
    tracker.expect_stages(run_stages(Stage.Narrating))
    planning = tracker.status.stages[0]
    assert [s.name for s in tracker.status.stages][:2] == ["Planning", "Narrating"] and planning.phase == "Running"


def test_phases_are_plain_strings_everywhere():
    tracker = StatusTracker(generation=1)
    tracker.started()
    assert type(tracker.status.phase) is str and f"{tracker.status.phase}" == "Running"
    assert tracker.as_dict()["phase"] == "Running"


def test_retrying_goes_back_to_the_queue_and_is_not_finished():
    tracker = StatusTracker(generation=1)
    tracker.started()
    tracker.failed("TransientError", "S3 down", stalled=False)
    tracker.retrying("TransientError", "S3 down; retry 1/3 in 10s", attempt=2)
    status = tracker.as_dict()
    assert (status["phase"], status["currentStage"], status["attempt"]) == ("Pending", "Queued", 2)
    assert "completionTime" not in status
    assert conditions(tracker)["Succeeded"][0] == "Unknown" and conditions(tracker)["Reconciling"][0] == "True"


def test_awaiting_input_is_not_finished():
    tracker = StatusTracker(generation=1)
    tracker.failed("RenderFailed", "scene 1 failed")
    tracker.awaiting_input("RenderFailed", "fix the code")
    status = tracker.as_dict()
    assert status["phase"] == "AwaitingInput" and "completionTime" not in status


def test_a_failed_run_stops_the_stages_still_running():
    tracker = StatusTracker(generation=1)
    tracker.started()
    tracker.apply(ProgressEvent("stage_started", "Rendering", 3, 6))
    tracker.failed("DeadlineExceeded", "spec.activeDeadlineSeconds (60s) exceeded", stopped="deadline exceeded")
    rendering = next(s for s in tracker.status.stages if s.name == "Rendering")
    assert rendering.phase == "Failed" and rendering.message == "stopped: deadline exceeded" and rendering.finished_at


def test_a_rejected_spec_has_no_stages():
    tracker = StatusTracker(generation=2)
    tracker.rejected("InvalidSpec", "invalid spec: spec.topic: field required")
    status = tracker.as_dict()
    assert status["phase"] == "Failed" and status["stages"] == []
    assert conditions(tracker)["Stalled"] == ("True", "InvalidSpec")


def test_a_new_process_resumes_the_run_it_takes_over():
    before = StatusTracker(generation=3, attempt=2)
    before.started()
    before.apply(ProgressEvent("stage_started", "Rendering", 3, 6, "rendering"))
    stored = VideoJobStatus.model_validate(before.as_dict())

    resumed = StatusTracker.resuming(stored, generation=3)
    assert resumed.status.start_time == stored.start_time and resumed.status.attempt == 2
    assert resumed.status.phase == "Running" and resumed.status.message == "rendering"
    assert all(s.phase == "Pending" for s in resumed.status.stages)  # the stages run again

    continued = StatusTracker.continuing(stored, generation=4, attempt=3)
    assert continued.status.observed_generation == 4 and continued.status.attempt == 3
    assert next(s for s in continued.status.stages if s.name == "Rendering").phase == "Running"


def test_observing_a_new_generation_and_restarting_the_deadline_clock():
    tracker = StatusTracker(generation=1)
    tracker.started()
    tracker.observe_generation(2)
    tracker.restart_clock()
    assert tracker.status.observed_generation == 2 and tracker.status.start_time is None
    tracker.started()
    assert tracker.status.start_time is not None


def test_progress_counts_a_step_per_scene_in_the_per_scene_stages():
    plain, narrated = Progress(), Progress(stages=run_stages(Stage.Narrating))
    plain.set_scene_count(2)
    narrated.set_scene_count(2)
    assert (plain.total, narrated.total) == (8, 10)  # plan, 2 codes, 2 renders, combine, upload, record (+ 2 narrations)


def test_scene_warnings_reach_the_rendering_stage_and_the_final_message():
    from videojob.pipeline.state import SceneState

    tracker = StatusTracker(generation=1)
    tracker.started()
    tracker.apply(ProgressEvent("stage_started", "Rendering", 2, 6))
    scenes = [SceneState(index=0, title="a", class_name="A"),
              SceneState(index=1, title="b", class_name="B", warnings=["Text 'b' overflows the frame at the top by 0.40 units"])]
    tracker.apply_update({"scenes": scenes})
    tracker.apply(ProgressEvent("stage_finished", "Rendering", 4, 6))
    warning = "scene 2: Text 'b' overflows the frame at the top by 0.40 units"
    stage = next(s for s in tracker.as_dict()["stages"] if s["name"] == "Rendering")
    assert stage["phase"] == "Succeeded" and stage["message"] == "layout warnings: " + warning
    # A checkpointed state gives plain dicts; hundreds of warnings stay within the message caps.
    tracker.apply_update({"scenes": [{"index": i, "warnings": ["x" * 300] * 20} for i in range(50)]})
    tracker.succeeded("version 1 ready: file:///v1.mp4")
    status = tracker.as_dict()
    assert status["message"].startswith("version 1 ready: file:///v1.mp4; warnings: scene 1: xxx")
    assert len(status["message"]) <= 3000 and len(stage["message"]) <= 1000
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True" and succeeded["message"].startswith("version 1 ready: file:///v1.mp4; warnings:")

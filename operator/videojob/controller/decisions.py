"""Pure decisions of the controller: no I/O, so they are tested as plain functions.

- what a spec change means (pause/resume the current run, or a new run for a new version);
- whether an object found at start-up needs its run restarted;
- retry backoff and the active deadline.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable

from videojob.api.models import API_GROUP, Backoff

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "AwaitingInput"})

# The generation whose spec a run is producing. Toggling spec.suspend bumps metadata.generation
# without changing what is produced; the run keeps its generation (and so its version), and this
# annotation remembers it across operator restarts. Absent means "metadata.generation".
CONTENT_GENERATION = f"{API_GROUP}/content-generation"

SUSPEND_FIELD = ("suspend",)


def is_terminal(phase: str | None) -> bool:
    return phase in TERMINAL_PHASES


def only_suspend_changed(diff: Iterable[Any]) -> bool:
    """True when a spec diff (Kopf's, relative to `spec`) touches nothing but `suspend`."""
    fields = [tuple(item[1]) for item in diff]
    return bool(fields) and all(field == SUSPEND_FIELD for field in fields)


def content_generation(body: dict[str, Any]) -> int:
    meta = body.get("metadata", {})
    generation = int(meta.get("generation") or 1)
    remembered = (meta.get("annotations") or {}).get(CONTENT_GENERATION)
    try:
        value = int(remembered) if remembered is not None else generation
    except ValueError:
        return generation
    return value if 0 < value <= generation else generation


def needs_run(body: dict[str, Any]) -> bool:
    """At start-up: does this VideoJob still have work to do?

    Finished generations (Succeeded, Failed, AwaitingInput for the current generation) are
    left alone; anything else (never seen, Pending, Running, Suspended, an older generation)
    gets its run (re)started. A restarted run reuses cached renders and its reserved version.
    """
    status = body.get("status") or {}
    generation = int(body.get("metadata", {}).get("generation") or 1)
    observed = status.get("observedGeneration")
    if observed is None or int(observed) < generation:
        return True
    return not is_terminal(status.get("phase"))


def same_run(body: dict[str, Any]) -> bool:
    """The status describes the run of this object's current content generation (a restart)."""
    status = body.get("status") or {}
    observed = status.get("observedGeneration")
    return observed is not None and int(observed) >= content_generation(body) and status.get("phase") is not None


def backoff_seconds(backoff: Backoff, retry: int) -> float:
    """Delay before retry number `retry` (1-based): duration * factor^(retry-1), capped."""
    delay = backoff.duration_seconds * (backoff.factor ** max(0, retry - 1))
    return float(min(delay, backoff.max_duration_seconds))


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def deadline_remaining(start_time: str | None, active_deadline_seconds: int | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds left before spec.activeDeadlineSeconds runs out (None: no deadline or not started)."""
    start = parse_time(start_time)
    if active_deadline_seconds is None or start is None:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return active_deadline_seconds - (now - start).total_seconds()


def queue_key(body: dict[str, Any]) -> str:
    """Order of the run queue: creation time (RFC 3339 sorts as text); ties go by arrival."""
    return body.get("metadata", {}).get("creationTimestamp") or ""


def human_loop_message(reason: str, message: str) -> str:
    hint = {
        "RenderFailed": "fix spec.code or spec.storyboard, or give spec.editing.feedback",
        "InvalidContent": "fix the content source (spec.code, spec.storyboard or spec.prompt)",
        "InvalidSpec": "fix the fields named above",
        "LLMNotConfigured": "set spec.llm.model or the operator's VIDEOJOB_LLM_MODEL",
    }.get(reason, "change the spec (e.g. spec.editing.feedback) to try again")
    return f"{message} -- waiting for input: {hint}; any spec edit starts a new run"

"""metav1.Condition helpers and the reason words we use (kubebuilder's conditions.go, in Python).

Conditions are always rebuilt as a whole list: a JSON merge patch replaces lists, so writing one
condition alone would drop the others.
"""

from __future__ import annotations

from datetime import datetime, timezone

from videojob.api.models import Condition

SUCCEEDED = "Succeeded"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SUSPENDED = "Suspended"
UPLOADED = "Uploaded"
RECORDED = "Recorded"

# Reasons (CamelCase, stable: dashboards and alerts match on them).
QUEUED = "Queued"
RUNNING = "Running"
COMPLETED = "Completed"
SUSPENDED_REASON = "SuspendedBySpec"
NOT_SUSPENDED = "NotSuspended"
DEADLINE_EXCEEDED = "DeadlineExceeded"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
AWAITING_INPUT = "AwaitingInput"
UPLOAD_DEGRADED = "UploadFailedKeptLocally"
RECORD_DEGRADED = "RecordFailedKeptLocally"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str = "",
    generation: int | None = None,
    now: str | None = None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime changes only when the status does."""
    now = now or now_rfc3339()
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type == type_:
            found = True
            changed = cond.status != status
            out.append(
                Condition(
                    type=type_, status=status, reason=reason, message=message[:1000],
                    observed_generation=generation,
                    last_transition_time=now if changed else cond.last_transition_time,
                )
            )
        else:
            out.append(cond)
    if not found:
        out.append(
            Condition(
                type=type_, status=status, reason=reason, message=message[:1000],
                observed_generation=generation, last_transition_time=now,
            )
        )
    return out


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)

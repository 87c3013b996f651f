"""Prometheus metrics, DESIGN.md names. The one place metrics are defined and fed.

Other modules call the `record_*` functions below instead of touching metric objects, so names,
labels and buckets stay consistent. `videojob_jobs{namespace,phase}` is not here: it is computed
at scrape time by a collector the operator registers (see `videojob.controller.metrics`).
No histogram carries per-object labels (name, uid): their cardinality would grow without bound.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from videojob import __version__

# Whole jobs and stages take seconds (a cached re-run) to an hour (a production-quality render).
_LONG = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
_WAIT = (0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_LLM = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_UPLOAD = (0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

BUILD_INFO = Gauge("videojob_build_info", "Version of the running videojob build", ["version"])
BUILD_INFO.labels(version=__version__).set(1)

PHASE_TRANSITIONS = Counter(
    "videojob_phase_transitions_total", "VideoJob phase changes", ["namespace", "phase"]
)
JOB_DURATION = Histogram(
    "videojob_duration_seconds", "Wall time of a VideoJob run, start to end", ["namespace", "result"], buckets=_LONG
)
STAGE_DURATION = Histogram(
    "videojob_stage_duration_seconds", "Wall time of one pipeline stage", ["stage", "result"], buckets=_LONG
)
QUEUE_WAIT = Histogram("videojob_queue_wait_seconds", "Time a run waited for a free slot", buckets=_WAIT)
RETRIES = Counter("videojob_retries_total", "Retries, by stage and reason", ["stage", "reason"])
FAILURES = Counter("videojob_failures_total", "Failed runs and steps, by stage and reason", ["stage", "reason"])
RENDER_ATTEMPTS = Counter("videojob_render_attempts_total", "Scene render attempts", ["result"])
LLM_TOKENS = Counter("videojob_llm_tokens_total", "LLM tokens", ["model", "direction"])
LLM_REQUEST_DURATION = Histogram(
    "videojob_llm_request_duration_seconds", "LLM request latency", ["model", "result"], buckets=_LLM
)
UPLOAD_BYTES = Counter("videojob_upload_bytes_total", "Bytes uploaded to S3", ["target"])
UPLOAD_DURATION = Histogram(
    "videojob_upload_duration_seconds", "Time to upload one object", ["target"], buckets=_UPLOAD
)
AWS_ERRORS = Counter(
    "videojob_aws_errors_total", "Errors from AWS calls", ["service", "operation", "retryable"]
)
POLICY_DENIALS = Counter(
    "videojob_policy_denials_total", "VideoJobs refused or stopped by the tenancy policy, by rule", ["rule"]
)


def record_policy_denial(rule: str) -> None:
    """rule: one of videojob.policy.RULES."""
    POLICY_DENIALS.labels(rule=rule).inc()


def record_phase(namespace: str, phase: str) -> None:
    PHASE_TRANSITIONS.labels(namespace=namespace, phase=phase).inc()


def record_job_done(namespace: str, result: str, seconds: float) -> None:
    JOB_DURATION.labels(namespace=namespace, result=result).observe(seconds)


def record_stage(stage: str, result: str, seconds: float) -> None:
    STAGE_DURATION.labels(stage=stage, result=result).observe(seconds)


def record_queue_wait(seconds: float) -> None:
    QUEUE_WAIT.observe(seconds)


def record_retry(stage: str, reason: str) -> None:
    RETRIES.labels(stage=stage, reason=reason).inc()


def record_failure(stage: str, reason: str) -> None:
    FAILURES.labels(stage=stage, reason=reason).inc()


def record_render_attempt(result: str) -> None:
    """result: success | failure | cached."""
    RENDER_ATTEMPTS.labels(result=result).inc()


def record_llm_call(model: str, result: str, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
    LLM_REQUEST_DURATION.labels(model=model, result=result).observe(seconds)
    if prompt_tokens:
        LLM_TOKENS.labels(model=model, direction="prompt").inc(prompt_tokens)
    if completion_tokens:
        LLM_TOKENS.labels(model=model, direction="completion").inc(completion_tokens)


def record_upload(target: str, nbytes: int, seconds: float) -> None:
    """target: video | code."""
    UPLOAD_BYTES.labels(target=target).inc(nbytes)
    UPLOAD_DURATION.labels(target=target).observe(seconds)


def record_aws_error(service: str, operation: str, retryable: bool) -> None:
    AWS_ERRORS.labels(service=service, operation=operation, retryable=str(retryable).lower()).inc()

"""Metrics of one `videojob run`, written in node-exporter's textfile-collector format.

The pipeline feeds the process-wide metrics (stage durations, render attempts, LLM, uploads)
as it runs; `RunMetrics` adds what the operator would record for the job as a whole (phase
transitions, the job's duration, the failure) and writes only `videojob_*` families: the
default registry's `process_*`/`python_*` collectors would clash with node-exporter's own.

    metrics = RunMetrics(namespace=job.metadata.namespace)   # before the run
    ... run with callbacks=[metrics.on_event] ...
    metrics.finish(result)                                   # a run.RunResult
    metrics.write("/var/lib/node_exporter/textfile/videojob.prom")

`write` is atomic (a temporary file renamed over the target), so node-exporter never reads a
half-written file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, write_to_textfile
from prometheus_client.metrics_core import Metric

from videojob import metrics

LOCAL_NAMESPACE = "local"  # the namespace label of a run without a cluster namespace
PREFIX = "videojob_"


class _VideojobOnly:
    """A collector re-exporting the `videojob_*` families of another registry."""

    def __init__(self, source: CollectorRegistry):
        self.source = source

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            if family.name.startswith(PREFIX):
                yield family


def videojob_registry(source: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """A registry holding only the `videojob_*` metrics of `source` (read at collect time)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_VideojobOnly(source))
    return registry


def job_result(phase: str | None) -> str:
    """The `result` label of videojob_duration_seconds for a final phase (as the operator's)."""
    return "success" if phase == "Succeeded" else "failure"


class RunMetrics:
    """Job-level metrics of one local run; see the module docstring."""

    def __init__(self, namespace: str | None = None, registry: CollectorRegistry = REGISTRY):
        self.namespace = namespace or LOCAL_NAMESPACE
        self.registry = registry
        self.started = time.monotonic()
        self.finished: float | None = None
        self.stage: str | None = None
        metrics.record_phase(self.namespace, "Running")

    def on_event(self, event: Any) -> None:
        """A pipeline ProgressEvent: remembers the stage, for failures raised outside a stage."""
        if getattr(event, "stage", None) and event.stage != "Queued":
            self.stage = event.stage

    def finish(self, result: Any) -> None:
        """Record the end of the run (a run.RunResult). Only the first call counts."""
        if self.finished is not None:
            return
        self.finished = time.monotonic()
        phase = result.status.phase
        metrics.record_phase(self.namespace, phase)
        metrics.record_job_done(self.namespace, job_result(phase), self.finished - self.started)
        if not result.succeeded:
            error = result.error
            stage = getattr(error, "stage", None) or result.status.current_stage or self.stage or "Unknown"
            metrics.record_failure(stage, getattr(error, "reason", None) or "Unknown")

    def write(self, path: str | Path) -> Path:
        """Write the `videojob_*` metrics to `path` atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), videojob_registry(self.registry))
        return path

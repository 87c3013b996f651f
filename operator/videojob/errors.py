"""Errors a run raises, classified so callers know whether a retry can help.

They live at the bottom of the package (beside `config`) because both the pipeline and the
storage layer raise them: a required upload that fails is `UploadFailed` wherever it fails.

`reason` is a CamelCase word that ends up in status conditions, Events and the
`videojob_failures_total{reason}` metric, so keep the set small and stable.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class. `permanent` errors need a spec change; transient ones may pass on retry."""

    reason = "PipelineError"
    permanent = True

    def __init__(self, message: str, *, reason: str | None = None, stage: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.stage = stage


class InvalidContent(PipelineError):
    """The spec cannot produce a video as written (no Scene class, forbidden import, no model...)."""

    reason = "InvalidContent"


class LLMNotConfigured(InvalidContent):
    reason = "LLMNotConfigured"


class SceneRenderFailed(PipelineError):
    """A scene failed to render on every allowed attempt."""

    reason = "RenderFailed"

    def __init__(self, scene_index: int, title: str, attempts: int, last_error: str):
        self.scene_index = scene_index
        self.title = title
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(
            f"scene {scene_index + 1} ({title!r}) failed after {attempts} attempt(s): {last_error}",
            stage="Rendering",
        )


class TransientError(PipelineError):
    """Something outside the spec failed (network, throttling, a lost process); retry may help."""

    reason = "TransientError"
    permanent = False


class UploadFailed(PipelineError):
    """Uploading or recording failed and the job requires it (storage.required / AWS_REQUIRE_UPLOAD)."""

    reason = "UploadFailed"
    permanent = False

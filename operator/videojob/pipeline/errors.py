"""The pipeline's error classes (defined in `videojob.errors`, shared with the storage layer)."""

from videojob.errors import (
    InvalidContent,
    LLMNotConfigured,
    PipelineError,
    SceneRenderFailed,
    TransientError,
    UploadFailed,
)

__all__ = ["InvalidContent", "LLMNotConfigured", "PipelineError", "SceneRenderFailed", "TransientError", "UploadFailed"]

"""The VideoJob API: pydantic models for spec and status, CRD generation, manifest loading."""

from videojob.api.models import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    VideoJob,
    VideoJobSpec,
    VideoJobStatus,
)

__all__ = ["API_GROUP", "API_VERSION", "KIND", "PLURAL", "VideoJob", "VideoJobSpec", "VideoJobStatus"]

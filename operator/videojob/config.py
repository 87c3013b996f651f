"""Operator and pipeline settings from `VIDEOJOB_*` environment variables (also Helm values).

Read once at start-up; a bad value fails fast with the variable's name (see `load_settings`).
AWS settings live in `videojob.storage.aws_config` with the seed's `AWS_*` names.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Executor(str, Enum):
    inline = "inline"
    job = "job"


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEOJOB_", extra="ignore", use_enum_values=True)

    executor: Executor = Executor.inline
    max_concurrent_jobs: int = Field(default=2, ge=1, le=256)
    llm_model: str | None = Field(default=None, description="Default `provider:model` for spec.prompt")
    workdir: Path = Field(default=Path("/tmp/videojob"), description="Scratch space and local store")
    # Scenes of one job rendered at once. Each render is a child process that mostly uses one core.
    scene_parallelism: int = Field(default=2, ge=1, le=64)
    # Sandbox limits for one scene render (the wall clock comes from spec.render.sceneTimeoutSeconds).
    render_memory_mb: int = Field(default=3072, ge=256)
    render_max_output_mb: int = Field(default=2048, ge=1)
    # Render cache size; least recently used scenes are dropped beyond it.
    render_cache_mb: int = Field(default=4096, ge=0)
    # Attempts of code generation remembered in the repair prompt.
    repair_memory: int = Field(default=5, ge=1, le=50)

    # Job executor (VIDEOJOB_EXECUTOR=job): each run is a batch/v1 Job running `videojob worker`.
    worker_image: str | None = Field(default=None, description="Image of worker pods (the operator's own image)")
    worker_service_account: str = "videojob-worker"
    # Comma-separated Secret names for pulling the worker image from a private registry.
    worker_image_pull_secrets: str = ""
    job_ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    # More than one operator replica: only the holder of the Lease `videojob-operator` (in
    # POD_NAMESPACE) handles VideoJobs; the others stand by (controller/leader.py).
    leader_election: bool = False
    # A worker Job whose pod cannot be created (FailedCreate) or scheduled fails after this long.
    job_pod_start_timeout_seconds: int = Field(default=600, ge=1)
    # JSON object merged under spec.podTemplate: resources, nodeSelector, tolerations, ...
    job_pod_defaults: str = "{}"


def load_settings() -> Settings:
    """Settings from the environment; raises ConfigError naming the variable on a bad value."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "VIDEOJOB_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("; ".join(lines)) from None

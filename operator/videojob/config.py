"""Operator and pipeline settings from `VIDEOJOB_*` environment variables (also Helm values).

Read once at start-up; a bad value fails fast with the variable's name (see `load_settings`).
AWS settings live in `videojob.storage.aws_config` with the seed's `AWS_*` names.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Executor(str, Enum):
    inline = "inline"
    job = "job"


class SandboxMode(str, Enum):
    auto = "auto"  # bubblewrap where it works; untrusted code is refused where it does not
    bubblewrap = "bubblewrap"
    none = "none"  # no OS sandbox: only for code you trust


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
    # How scene code is isolated (see docs/security.md). `none` is an explicit opt-out.
    sandbox: SandboxMode = SandboxMode.auto
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
    # RuntimeClass of worker pods (gVisor, Kata): a second kernel boundary around the render container.
    job_runtime_class_name: str = ""
    # All-namespaces mode: the operator creates the worker ServiceAccount, a RoleBinding of this
    # ClusterRole and the worker NetworkPolicy in a VideoJob's namespace (controller/worker_identity.py).
    # Empty: the chart made them in every namespace VideoJobs may use.
    worker_cluster_role: str = ""
    # JSON objects: annotations of that ServiceAccount (IRSA), and the worker NetworkPolicy's spec.
    worker_service_account_annotations: str = "{}"
    worker_network_policy: str = "{}"

    # Tenancy (DESIGN.md "Tenancy"; decided in videojob.policy). Lists are comma-separated.
    # Base URLs a VideoJob may name in spec.llm.baseUrl (empty: none); such jobs get only the
    # credentials of their own Secret, never the operator's.
    llm_allowed_base_urls: str = ""
    # Globs on `provider:model` for spec.llm.model / fallbackModel (empty: any model).
    llm_allowed_models: str = ""
    # Inline executor: runs of one namespace at once (0: only VIDEOJOB_MAX_CONCURRENT_JOBS applies).
    max_concurrent_per_namespace: int = Field(default=0, ge=0, le=256)
    # Per-job caps, enforced as the run goes (0: no cap): planned scenes, LLM tokens (prompt +
    # completion), characters sent to speech synthesis.
    max_scenes_per_job: int = Field(default=0, ge=0)
    max_tokens_per_job: int = Field(default=0, ge=0)
    max_tts_characters_per_job: int = Field(default=0, ge=0)

    @field_validator("llm_allowed_base_urls")
    @classmethod
    def _base_urls_are_urls(cls, value: str) -> str:
        bad = [u for u in value.split(",") if u.strip() and not _is_http_url(u.strip())]
        if bad:
            raise ValueError(f"not http(s) URLs: {', '.join(bad)}")
        return value


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


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

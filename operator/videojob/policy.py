"""Tenancy policy: what a VideoJob may ask of the operator, decided without I/O.

A namespace is a tenant. The operator holds more rights than a VideoJob's author (its own LLM
keys and cloud role, every project's storage, every Secret it may read), so before any work it
checks that a VideoJob asks only for what its namespace may have:

- destinations: `spec.llm.baseUrl` must be in VIDEOJOB_LLM_ALLOWED_BASE_URLS, and such a job
  gets credentials only from its own Secret (see `tenant_endpoint`); models must match
  VIDEOJOB_LLM_ALLOWED_MODELS;
- projects: `spec.projectId` is the namespace, or one its `videogen.io/projects` annotation lists;
- Secrets: only one labelled `videogen.io/credentials: "true"` is read, and of it only the keys
  of the providers the job uses (`secret_keys`);
- caps: scenes, tokens and TTS characters per job (`JobCaps`; the run enforces them as it goes).

Everything here is a pure function of the spec, the settings and the Namespace's annotations;
the controller reads those and applies the verdict (a `Denial` becomes a PolicyDenied refusal).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

from videojob.api.models import API_GROUP, VideoJob

PROJECTS_ANNOTATION = f"{API_GROUP}/projects"
CREDENTIALS_LABEL = f"{API_GROUP}/credentials"
CREDENTIALS_LABEL_SELECTOR = f"{CREDENTIALS_LABEL}=true"
REASON = "PolicyDenied"

# The `rule` label of videojob_policy_denials_total, one per rule; the setting or object that
# states the rule is named in each denial's message.
RULE_BASE_URL = "allowed_base_urls"
RULE_MODEL = "allowed_models"
RULE_ENDPOINT_PROVIDER = "endpoint_provider"
RULE_PROJECT = "namespace_projects"
RULE_SECRET_LABEL = "secret_label"
RULE_SCENES = "max_scenes_per_job"
RULE_TOKENS = "max_tokens_per_job"
RULE_TTS = "max_tts_characters_per_job"
RULES = (RULE_BASE_URL, RULE_MODEL, RULE_ENDPOINT_PROVIDER, RULE_PROJECT, RULE_SECRET_LABEL,
         RULE_SCENES, RULE_TOKENS, RULE_TTS)

# Secret keys the operator reads, per provider family (init_chat_model's provider names). Only
# these keys of a labelled Secret are ever kept; everything else in it is dropped unread.
PROVIDER_SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION"),
    "azure_openai": ("AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION"),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "bedrock": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"),
    "ollama": (),
}
_BEDROCK = {"bedrock", "bedrock_converse", "anthropic_bedrock"}

# Providers whose client can be kept from every credential in the operator's environment when
# it talks to a VideoJob's own endpoint (checked in the LLM client's `tenant` mode). spec.llm.baseUrl
# names an OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Ollama's /v1 all are).
TENANT_ENDPOINT_PROVIDERS = ("openai",)


def provider_family(model: str) -> str:
    """`bedrock_converse:...` -> `bedrock`; `openai:gpt-4o` -> `openai`."""
    provider = model.partition(":")[0]
    return "bedrock" if provider in _BEDROCK else provider


@dataclass(frozen=True)
class Denial:
    """Why a VideoJob is refused: the field it names, the rule it breaks, and what to do."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (rule {self.rule})"


class PolicyDenied(Exception):
    def __init__(self, denial: Denial):
        super().__init__(str(denial))
        self.denial = denial


@dataclass(frozen=True)
class JobCaps:
    """Per-job limits from the operator's settings; None is no limit."""

    max_scenes: int | None = None
    max_tokens: int | None = None
    max_tts_characters: int | None = None


@dataclass(frozen=True)
class TenancyPolicy:
    allowed_base_urls: tuple[str, ...] = ()  # normalised (see normalize_url); empty: none
    allowed_models: tuple[str, ...] = ()  # fnmatch globs on `provider:model`; empty: any
    max_concurrent_per_namespace: int | None = None
    caps: JobCaps = JobCaps()

    @classmethod
    def from_settings(cls, settings: Any) -> "TenancyPolicy":
        def positive(value: int) -> int | None:
            return value if value and value > 0 else None

        return cls(
            allowed_base_urls=tuple(normalize_url(u) for u in split_list(settings.llm_allowed_base_urls)),
            allowed_models=tuple(split_list(settings.llm_allowed_models)),
            max_concurrent_per_namespace=positive(settings.max_concurrent_per_namespace),
            caps=JobCaps(
                max_scenes=positive(settings.max_scenes_per_job),
                max_tokens=positive(settings.max_tokens_per_job),
                max_tts_characters=positive(settings.max_tts_characters_per_job),
            ),
        )


def split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def normalize_url(url: str) -> str:
    """Compare base URLs as a server would route them: scheme and host case-insensitive, the
    default port implied, no trailing slash, no query or fragment."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def valid_base_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# ------------------------------------------------------------------------------------ checks


def check(job: VideoJob, namespace: str, policy: TenancyPolicy, *, default_model: str | None,
          namespace_annotations: dict[str, str] | None) -> Denial | None:
    """The first rule the VideoJob breaks, or None. `namespace_annotations` are the Namespace's
    (None when not read: only needed when spec.projectId differs from the namespace)."""
    return (
        check_project(job, namespace, namespace_annotations)
        or check_destination(job, policy, default_model)
        or check_scene_count(job, policy.caps)
    )


def project_needs_namespace(job: VideoJob, namespace: str) -> bool:
    """Whether deciding on spec.projectId needs the Namespace's annotations."""
    return job.spec.project_id is not None and job.spec.project_id != namespace


def granted_projects(annotations: dict[str, str] | None) -> set[str]:
    return set(split_list((annotations or {}).get(PROJECTS_ANNOTATION)))


def check_project(job: VideoJob, namespace: str, annotations: dict[str, str] | None) -> Denial | None:
    project = job.spec.project_id
    if project is None or project == namespace or project in granted_projects(annotations):
        return None
    what = "publish into or edit" if job.spec.editing is None else "edit"
    return Denial(
        "spec.projectId", RULE_PROJECT,
        f"project {project!r} does not belong to namespace {namespace!r}: a VideoJob may {what} only "
        f"its namespace's project or one listed in the Namespace annotation {PROJECTS_ANNOTATION} "
        "(set by whoever administers namespaces)",
    )


def check_destination(job: VideoJob, policy: TenancyPolicy, default_model: str | None) -> Denial | None:
    llm = job.spec.llm
    if llm is None:
        return None
    if llm.base_url is not None:
        if not valid_base_url(llm.base_url) or normalize_url(llm.base_url) not in policy.allowed_base_urls:
            listed = ", ".join(policy.allowed_base_urls) or "none are allowed"
            return Denial(
                "spec.llm.baseUrl", RULE_BASE_URL,
                f"{llm.base_url!r} is not in the operator's VIDEOJOB_LLM_ALLOWED_BASE_URLS ({listed}); "
                "omit baseUrl to use the operator's own endpoints",
            )
        for field, model in (("spec.llm.model", llm.model or default_model), ("spec.llm.fallbackModel", llm.fallback_model)):
            if model and tenant_endpoint(job, model, default_model) and provider_family(model) not in TENANT_ENDPOINT_PROVIDERS:
                return Denial(
                    field, RULE_ENDPOINT_PROVIDER,
                    f"provider {model.partition(':')[0]!r} cannot be used with spec.llm.baseUrl (its client could "
                    f"send the operator's own credentials there); baseUrl works with: {', '.join(TENANT_ENDPOINT_PROVIDERS)}",
                )
    for field, model in (("spec.llm.model", llm.model), ("spec.llm.fallbackModel", llm.fallback_model)):
        if model and not model_allowed(model, policy.allowed_models):
            return Denial(
                field, RULE_MODEL,
                f"{model!r} matches none of the operator's VIDEOJOB_LLM_ALLOWED_MODELS ({', '.join(policy.allowed_models)})",
            )
    return None


def model_allowed(model: str, globs: Iterable[str]) -> bool:
    globs = list(globs)
    return not globs or any(fnmatch.fnmatchcase(model, glob) for glob in globs)


def check_scene_count(job: VideoJob, caps: JobCaps) -> Denial | None:
    """Storyboards state their scenes up front; other sources are checked when planned."""
    storyboard = job.spec.storyboard
    if caps.max_scenes is None or job.spec.source != "storyboard" or storyboard is None:
        return None
    return scenes_denial(len(storyboard.scenes), caps.max_scenes, "spec.storyboard.scenes")


def scenes_denial(scenes: int, cap: int | None, field: str) -> Denial | None:
    if cap is None or scenes <= cap:
        return None
    return Denial(field, RULE_SCENES, f"{scenes} scenes exceed the operator's VIDEOJOB_MAX_SCENES_PER_JOB ({cap})")


# --------------------------------------------------------------------------------- credentials


def tenant_endpoint(job: VideoJob, model: str, default_model: str | None) -> bool:
    """Whether calls to `model` go to the VideoJob's own endpoint (spec.llm.baseUrl), which must
    never see the operator's credentials. The fallback shares baseUrl only with the same provider."""
    llm = job.spec.llm
    if llm is None or llm.base_url is None:
        return False
    primary = llm.model or default_model
    return model == primary or (primary is not None and model.partition(":")[0] == primary.partition(":")[0])


def secret_keys(job: VideoJob, default_model: str | None) -> set[str]:
    """The Secret keys the job's models may use (primary and fallback providers)."""
    llm = job.spec.llm
    models = [(llm.model if llm else None) or default_model, llm.fallback_model if llm else None]
    keys: set[str] = set()
    for model in filter(None, models):
        keys.update(PROVIDER_SECRET_KEYS.get(provider_family(model), ()))
    return keys


def chosen_keys(data: dict[str, str], keys: set[str]) -> dict[str, str]:
    """Of a Secret's decoded data, only the keys the job's providers use."""
    return {k: v for k, v in data.items() if k in keys}

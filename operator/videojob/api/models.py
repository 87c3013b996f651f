"""Pydantic models of the VideoJob custom resource (`videogen.io/v1alpha1`).

These models are the single source of truth: the CRD schema in `crds/videojob.yaml` is generated
from them (`videojob crd`), the CLI validates manifests with them, and the operator re-validates
what the API server admitted (some rules, like "prompt needs a model", are not expressible in a CRD).
Field names on the wire are camelCase; Python attributes are snake_case.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_serializer, model_validator
from pydantic.alias_generators import to_camel

from videojob.api import limits

API_GROUP = "videogen.io"
API_VERSION = "v1alpha1"
KIND = "VideoJob"
PLURAL = "videojobs"
SINGULAR = "videojob"
SHORT_NAMES = ["vj"]

# DESIGN.md: projectId and videoId are `[a-z0-9-]{1,63}`; they become S3 key segments and
# DynamoDB keys, so nothing else is allowed in them.
SLUG_PATTERN = r"^[a-z0-9-]{1,63}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]

# Limits that keep one manifest from exhausting the operator (a 10 MB prompt, 500 scenes).
MAX_SCENES = 50
MAX_PROMPT_CHARS = 20_000
MAX_CODE_CHARS = 200_000


class _Model(BaseModel):
    """Base for API objects: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )


class _StatusModel(_Model):
    # Status is written by us and read back from the API server, which may add fields from a
    # newer operator version; tolerate them instead of failing to parse our own objects.
    # Assignments are validated too, so `status.phase = Phase.Running` stores the plain value
    # "Running" (what metrics labels, logs and comparisons expect), never the enum member.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_enum_values=True, validate_assignment=True
    )

    @field_serializer("message", check_fields=False)
    def _cap_message(self, message: str | None) -> str | None:
        # The CRD caps messages; every status write is a model_dump, which cuts them to fit.
        return limits.truncate_message(message)


_Message = Field(json_schema_extra={"maxLength": limits.MAX_STATUS_MESSAGE})


# --------------------------------------------------------------------------------------- spec


class Shape(str, Enum):
    circle = "circle"
    square = "square"
    triangle = "triangle"
    arrow = "arrow"
    axes = "axes"
    none = "none"


class Quality(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    production = "production"


class StoryboardScene(_Model):
    title: Annotated[str, Field(min_length=1, max_length=200, description="Scene title, shown at the top.")]
    text: Annotated[str | None, Field(max_length=2000, description="Optional paragraph under the title.")] = None
    bullets: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
        Field(max_length=10, description="Optional bullet points."),
    ] = []
    shape: Annotated[Shape, Field(description="Optional illustration drawn beside the text.")] = Shape.none
    duration_seconds: Annotated[
        float, Field(ge=1, le=60, description="How long the scene lasts, in seconds.")
    ] = 4


class Storyboard(_Model):
    scenes: Annotated[
        list[StoryboardScene],
        Field(min_length=1, max_length=MAX_SCENES, description="Scenes in playback order."),
    ]


class SecretRef(_Model):
    name: Annotated[str, Field(min_length=1, max_length=253)]


class LLMSpec(_Model):
    model: Annotated[
        str | None,
        Field(
            max_length=300,
            description="`provider:model`, e.g. `bedrock_converse:anthropic.claude-3-5-sonnet-20240620-v1:0` "
            "or `openai:gpt-4o-mini`. Defaults to the operator's VIDEOJOB_LLM_MODEL.",
        ),
    ] = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.2
    max_tokens: Annotated[int, Field(ge=1, le=200_000)] = 4096
    base_url: Annotated[
        str | None, Field(max_length=2000, description="Base URL of an OpenAI-compatible server.")
    ] = None
    fallback_model: Annotated[
        str | None, Field(max_length=300, description="`provider:model` tried when the primary model fails.")
    ] = None
    request_timeout_seconds: Annotated[float, Field(ge=1, le=3600)] = 120
    credentials_secret_ref: Annotated[
        SecretRef | None,
        Field(description="Secret whose keys (e.g. OPENAI_API_KEY) are given to the LLM client only."),
    ] = None


class RenderSpec(_Model):
    quality: Quality = Quality.medium
    max_scene_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    scene_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 300


class ObjectLockMode(str, Enum):
    GOVERNANCE = "GOVERNANCE"
    COMPLIANCE = "COMPLIANCE"


class CodeObjectLock(_Model):
    mode: ObjectLockMode = ObjectLockMode.GOVERNANCE
    retention_days: Annotated[int, Field(ge=1, le=36500)] = 30


class StorageSpec(_Model):
    upload: bool = True
    required: Annotated[
        bool, Field(description="Fail the run when the upload fails (otherwise the video stays local).")
    ] = False
    code_object_lock: CodeObjectLock | None = None


class EditingSpec(_Model):
    feedback: Annotated[str, Field(min_length=1, max_length=4000)]
    from_version: Annotated[
        int | None, Field(ge=1, description="Version to edit; default the latest one.")
    ] = None


class Backoff(_Model):
    duration_seconds: Annotated[int, Field(ge=0, le=86400)] = 10
    factor: Annotated[float, Field(ge=1, le=10)] = 2
    max_duration_seconds: Annotated[int, Field(ge=0, le=86400)] = 600


class RetryStrategy(_Model):
    limit: Annotated[int, Field(ge=0, le=20)] = 3
    backoff: Backoff = Backoff()


# Kubernetes quantities: `cpu: 2`, `cpu: 0.5` and `memory: 2Gi` are all valid. `int-or-string`
# would refuse 0.5 and a structural schema cannot say "number or string", so the node is untyped
# and a CEL rule keeps it a scalar.
QUANTITY_RULE = {"rule": "type(self) == string || type(self) == int || type(self) == double",
                 "message": "a quantity: a number (2, 0.5) or a string (500m, 2Gi)"}
Quantity = Annotated[str | int | float, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True,
                                                        "x-kubernetes-validations": [QUANTITY_RULE]})]
# Objects passed through to the pod spec as they are (the API server validates them on the Job).
_OPAQUE_LIST = WithJsonSchema({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}})
_OPAQUE_OBJECT = WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})


class ResourceRequirements(_Model):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class PodTemplate(_Model):
    """Pod settings for the Job executor, merged over the operator's defaults."""

    resources: ResourceRequirements | None = None
    node_selector: dict[str, Annotated[str, StringConstraints(max_length=253)]] | None = None
    tolerations: Annotated[list[dict[str, Any]] | None, _OPAQUE_LIST] = None
    affinity: Annotated[dict[str, Any] | None, _OPAQUE_OBJECT] = None
    service_account_name: Annotated[str | None, Field(max_length=253)] = None
    priority_class_name: Annotated[str | None, Field(max_length=253)] = None


class VideoJobSpec(_Model):
    topic: Annotated[str, Field(min_length=1, max_length=200, description="What the video is about.")]
    description: Annotated[str | None, Field(max_length=4000)] = None
    project_id: Annotated[
        Slug | None, Field(description="Project the video belongs to; default the namespace.")
    ] = None
    video_id: Annotated[Slug | None, Field(description="Stable id of the video; default metadata.name.")] = None
    code: Annotated[
        str | None,
        Field(min_length=1, max_length=MAX_CODE_CHARS, description="Manim code rendered as given."),
    ] = None
    storyboard: Storyboard | None = None
    prompt: Annotated[
        str | None,
        Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="Free text; needs an LLM."),
    ] = None
    llm: LLMSpec | None = None
    render: RenderSpec = RenderSpec()
    storage: StorageSpec = StorageSpec()
    editing: EditingSpec | None = None
    retry_strategy: RetryStrategy = RetryStrategy()
    active_deadline_seconds: Annotated[int | None, Field(ge=1, le=7 * 86400)] = None
    suspend: bool = False
    human_loop: Annotated[
        bool, Field(description="Wait for a person (phase AwaitingInput) instead of failing.")
    ] = False
    pod_template: Annotated[
        PodTemplate | None, Field(description="Pod settings when runs execute as Kubernetes Jobs.")
    ] = None

    @model_validator(mode="after")
    def _fits_in_annotations(self) -> "VideoJobSpec":
        # The same bound as the CRD's CEL rule (api/limits.py): Kopf and kubectl keep the spec in
        # annotations, which share 256 KiB.
        if limits.spec_text_bytes(self.model_dump(by_alias=True, exclude_none=True), type(self)) > limits.MAX_SPEC_TEXT_BYTES:
            raise ValueError(limits.SPEC_TOO_LARGE)
        return self

    @property
    def source(self) -> Literal["code", "storyboard", "prompt", "none"]:
        """The content source in effect: first present wins, code > storyboard > prompt."""
        if self.code is not None:
            return "code"
        if self.storyboard is not None:
            return "storyboard"
        if self.prompt is not None:
            return "prompt"
        return "none"


# ------------------------------------------------------------------------------------- status


class Phase(str, Enum):
    Pending = "Pending"
    Running = "Running"
    Succeeded = "Succeeded"
    Failed = "Failed"
    Suspended = "Suspended"
    AwaitingInput = "AwaitingInput"


# Where a run is (status.currentStage), in the order a run passes through them: the one list of
# stages. The pipeline's stages are the members between Queued and Done (pipeline/status.py).
class Stage(str, Enum):
    Queued = "Queued"
    Planning = "Planning"
    Narrating = "Narrating"
    GeneratingCode = "GeneratingCode"
    Rendering = "Rendering"
    Combining = "Combining"
    Uploading = "Uploading"
    Recording = "Recording"
    Done = "Done"


class StagePhase(str, Enum):
    Pending = "Pending"
    Running = "Running"
    Succeeded = "Succeeded"
    Failed = "Failed"
    Skipped = "Skipped"


class UploadState(str, Enum):
    not_started = "not_started"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    failed_graceful = "failed_graceful"
    skipped = "skipped"


class StageStatus(_StatusModel):
    name: Stage
    phase: StagePhase = StagePhase.Pending
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    message: Annotated[str | None, _Message] = None


class Outputs(_StatusModel):
    video_uri: str | None = Field(default=None, alias="videoURI")
    code_uri: str | None = Field(default=None, alias="codeURI")
    size_bytes: int | None = None
    duration_seconds: float | None = None
    sha256: str | None = None
    scenes: int | None = None


class RecordRef(_StatusModel):
    table: str | None = None
    video_key: str | None = None
    version: int | None = None


class UploadStatus(_StatusModel):
    status: UploadState = UploadState.not_started
    bytes_uploaded: int = 0
    total_bytes: int = 0
    percent: float = 0


class CodeUploadStatus(_StatusModel):
    status: UploadState = UploadState.not_started


class Usage(_StatusModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Condition(_StatusModel):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: Annotated[str, _Message] = ""
    observed_generation: int | None = None
    last_transition_time: str


class VideoJobStatus(_StatusModel):
    observed_generation: int | None = None
    phase: Phase | None = None
    current_stage: Stage | None = None
    progress: str | None = None
    progress_percent: int | None = None
    stages: list[StageStatus] = []
    version: int | None = None
    attempt: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    last_heartbeat_time: str | None = None
    outputs: Outputs | None = None
    record: RecordRef | None = None
    upload: UploadStatus | None = None
    code_upload: CodeUploadStatus | None = None
    usage: Usage | None = None
    # Which isolation rendered this generation's code (DESIGN: bubblewrap | pod | none).
    sandbox: Literal["bubblewrap", "pod", "none"] | None = None
    message: Annotated[str | None, _Message] = None
    conditions: Annotated[list[Condition], Field(json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})] = []

    @classmethod
    def from_object(cls, raw: dict | None) -> "VideoJobStatus | None":
        """The status stored in a VideoJob, or None when absent or unreadable (an unreadable
        status is replaced by the next write, never fatal)."""
        if not raw:
            return None
        try:
            return cls.model_validate(raw)
        except ValueError:
            return None


# ----------------------------------------------------------------------------------- resource


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta the pipeline uses; everything else passes through."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None


class VideoJob(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    api_version: Literal["videogen.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["VideoJob"]
    metadata: ObjectMeta
    spec: VideoJobSpec
    status: VideoJobStatus | None = None

    @property
    def project_id(self) -> str:
        return self.spec.project_id or self.metadata.namespace or "default"

    @property
    def video_id(self) -> str:
        return self.spec.video_id or self.metadata.name

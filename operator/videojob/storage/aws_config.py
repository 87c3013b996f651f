"""AWS settings from the seed's `AWS_*` environment variables (DESIGN.md, "AWS").

AWS is on when `AWS_S3_VIDEO_BUCKET` is set. Endpoints and credentials are not settings here:
boto3 finds them itself (`AWS_ENDPOINT_URL`, profiles, IAM roles, IRSA). A bad value fails with
`ConfigError` naming the variable, e.g. ``AWS_CHUNK_SIZE: must be at least 5 MiB (got '1MB')``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, ByteSize, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from videojob.config import ConfigError

MiB = 1024 * 1024
# S3 limits on multipart parts: 5 MiB minimum (except the last one), 5 GiB maximum.
MIN_PART = 5 * MiB
MAX_PART = 5 * 1024 * MiB

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")

# field name -> the environment variable users set, for error messages.
ENV_NAMES = {
    "region": "AWS_REGION",
    "video_bucket_name": "AWS_S3_VIDEO_BUCKET",
    "code_bucket_name": "AWS_S3_CODE_BUCKET",
    "metadata_table_name": "AWS_DYNAMODB_TABLE",
    "require_aws_upload": "AWS_REQUIRE_UPLOAD",
    "enable_encryption": "AWS_ENABLE_ENCRYPTION",
    "kms_key_id": "AWS_KMS_KEY_ID",
    "multipart_threshold": "AWS_MULTIPART_THRESHOLD",
    "chunk_size": "AWS_CHUNK_SIZE",
    "max_concurrent_uploads": "AWS_MAX_CONCURRENT_UPLOADS",
    "max_retries": "AWS_MAX_RETRIES",
    "retry_mode": "AWS_RETRY_MODE",
}


_ALIASES = {**ENV_NAMES, "region": "AWS_REGION"}


def _env(name: str) -> str:
    return ENV_NAMES[name]


class AWSConfig(BaseSettings):
    """Typed AWS settings. Construct with keyword arguments (field names) or from the environment."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    def __init__(self, **values):
        # Keyword arguments by field name (AWSConfig(chunk_size="8MiB")); the environment is read
        # only under the AWS_* names, never under bare field names like REGION or CHUNK_SIZE.
        super().__init__(**{_ALIASES.get(k, k): v for k, v in values.items()})

    region: str = Field(default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    video_bucket_name: str | None = Field(default=None, validation_alias=_env("video_bucket_name"))
    # Defaults to the video bucket: code lives under `code/`, videos under `videos/`.
    code_bucket_name: str | None = Field(default=None, validation_alias=_env("code_bucket_name"))
    metadata_table_name: str = Field(default="VideoMetadata", validation_alias=_env("metadata_table_name"))
    require_aws_upload: bool = Field(default=False, validation_alias=_env("require_aws_upload"))
    enable_encryption: bool = Field(default=True, validation_alias=_env("enable_encryption"))
    kms_key_id: str | None = Field(default=None, validation_alias=_env("kms_key_id"))
    # Sizes accept bytes or units: 67108864, "64MiB", "64MB".
    multipart_threshold: ByteSize = Field(default=ByteSize(32 * MiB), validation_alias=_env("multipart_threshold"))
    chunk_size: ByteSize = Field(default=ByteSize(16 * MiB), validation_alias=_env("chunk_size"))
    max_concurrent_uploads: int = Field(default=8, ge=1, le=64, validation_alias=_env("max_concurrent_uploads"))
    # Retries after the first attempt of each HTTP request, by botocore (the only AWS retry layer):
    # a request is tried at most max_retries + 1 times.
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias=_env("max_retries"))
    retry_mode: Literal["standard", "adaptive"] = Field(default="standard", validation_alias=_env("retry_mode"))

    @field_validator("video_bucket_name", "code_bucket_name", "kms_key_id", mode="before")
    @classmethod
    def _blank_is_unset(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("video_bucket_name", "code_bucket_name")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and (not _BUCKET.match(value) or ".." in value):
            raise ValueError("not a valid S3 bucket name (3-63 characters: lowercase letters, digits, '-', '.')")
        return value

    @field_validator("metadata_table_name")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("not a valid DynamoDB table name (3-255 characters: letters, digits, '_', '-', '.')")
        return value

    @field_validator("chunk_size")
    @classmethod
    def _part_size(cls, value: int) -> int:
        if not MIN_PART <= value <= MAX_PART:
            raise ValueError("must be between 5 MiB and 5 GiB (S3 multipart part size limits)")
        return value

    @field_validator("multipart_threshold")
    @classmethod
    def _threshold(cls, value: int) -> int:
        if value < MIN_PART:
            raise ValueError("must be at least 5 MiB (smaller objects are sent in one request anyway)")
        return value

    @model_validator(mode="after")
    def _code_bucket_default(self) -> "AWSConfig":
        if self.code_bucket_name is None:
            self.code_bucket_name = self.video_bucket_name
        return self

    @property
    def enabled(self) -> bool:
        """AWS is on when a video bucket is configured."""
        return self.video_bucket_name is not None

    def sse_args(self) -> dict[str, str]:
        """Server-side encryption arguments for PutObject / CreateMultipartUpload."""
        if not self.enable_encryption:
            return {}
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}


def load_aws_config(**overrides) -> AWSConfig:
    """AWS settings from the environment; raises ConfigError naming the variable on a bad value."""
    try:
        return AWSConfig(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            name = ENV_NAMES.get(field, field.upper() or "AWS settings")
            if field in ("region", "AWS_REGION", "AWS_DEFAULT_REGION"):
                name = "AWS_REGION"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{name}: {msg} (got {err.get('input')!r})")
        raise ConfigError("; ".join(lines)) from None

"""What both enhanced agents share: configuration, the AWS service, graceful vs required failures.

The agents are the seed's API (`agent.execute(state)` returning a state update) over the storage
layer; the pipeline itself publishes through `videojob.storage` and never goes through them.
"""

from __future__ import annotations

import logging
from typing import Any

from videojob.pipeline.state import AgentConfig
from videojob.storage.aws_config import AWSConfig
from videojob.storage.aws_publisher import degrade
from videojob.storage.aws_service import AWSIntegrationService
from videojob.storage.retry import AWSError

log = logging.getLogger("videojob.agents")


class AWSAgent:
    """Constructed as in the seed: `(agent_config, system_config, aws_config)`.

    Without an `aws_config` (or with one whose `AWS_S3_VIDEO_BUCKET` is unset) AWS is off and
    `execute` reports `skipped`: the agents then behave like the plain pipeline steps.
    """

    stage = "Uploading"

    def __init__(
        self,
        agent_config: AgentConfig,
        system_config: Any = None,
        aws_config: AWSConfig | None = None,
        *,
        service: AWSIntegrationService | None = None,
    ):
        self.config = agent_config
        self.system_config = system_config
        self.aws_config = aws_config
        self._service = service

    @property
    def aws_enabled(self) -> bool:
        return self.config.enabled and self.aws_config is not None and self.aws_config.enabled

    @property
    def service(self) -> AWSIntegrationService:
        if self._service is None:
            if not self.aws_enabled:
                raise RuntimeError(f"{self.config.name}: AWS is not configured (AWS_S3_VIDEO_BUCKET is unset)")
            self._service = AWSIntegrationService(self.aws_config)  # type: ignore[arg-type]
        return self._service

    def _required(self, required: bool | None) -> bool:
        return bool(required) or bool(self.aws_config and self.aws_config.require_aws_upload)

    def _fail(self, what: str, exc: AWSError, required: bool) -> str:
        """Raise UploadFailed when the upload is required; otherwise return the error text."""
        return degrade(what, exc, required=required, stage=self.stage)

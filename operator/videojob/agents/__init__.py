"""The seed's enhanced agents: its public API, as a façade over the storage layer.

    from videojob.agents import EnhancedRendererAgent, EnhancedCodeGeneratorAgent
    from videojob.agents import AWSIntegrationService
    from videojob.storage.aws_config import AWSConfig

The pipeline publishes through `videojob.storage` (`aws_publisher.AWSPublisher`), not through these.

Imported lazily so that `import videojob.agents` stays cheap (boto3 loads on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AWSIntegrationService", "EnhancedCodeGeneratorAgent", "EnhancedRendererAgent"]


def __getattr__(name: str) -> Any:
    if name == "EnhancedRendererAgent":
        from videojob.agents.enhanced_renderer_agent import EnhancedRendererAgent

        return EnhancedRendererAgent
    if name == "EnhancedCodeGeneratorAgent":
        from videojob.agents.enhanced_code_generator_agent import EnhancedCodeGeneratorAgent

        return EnhancedCodeGeneratorAgent
    if name == "AWSIntegrationService":
        from videojob.storage.aws_service import AWSIntegrationService

        return AWSIntegrationService
    raise AttributeError(name)

"""The seed's enhanced agents over the pipeline and storage, and the AWS publisher built from them.

    from videojob.agents import EnhancedRendererAgent, EnhancedCodeGeneratorAgent
    from videojob.storage.aws_config import AWSConfig

Imported lazily so that `import videojob.agents` stays cheap (boto3 loads on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EnhancedCodeGeneratorAgent", "EnhancedRendererAgent", "AWSPublisher", "aws_publisher_from_env"]


def __getattr__(name: str) -> Any:
    if name == "EnhancedRendererAgent":
        from videojob.agents.enhanced_renderer_agent import EnhancedRendererAgent

        return EnhancedRendererAgent
    if name == "EnhancedCodeGeneratorAgent":
        from videojob.agents.enhanced_code_generator_agent import EnhancedCodeGeneratorAgent

        return EnhancedCodeGeneratorAgent
    if name in ("AWSPublisher", "aws_publisher_from_env"):
        from videojob.agents import publisher

        return getattr(publisher, name)
    raise AttributeError(name)

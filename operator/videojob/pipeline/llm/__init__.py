"""Chat models for planning and code generation, and the one way they are called.

- `factory`: `spec.llm` / VIDEOJOB_LLM_MODEL -> the job's `ChatLLM` (provider, credentials).
- `client`: `ChatLLM` — timeout, the retry layer (tenacity), fallbacks, cache, usage.
- `errors`: which failures are worth a retry; redaction of credentials in messages.
- `messages`: text, code and token usage of answers.
- `tool_loop`: the code generator's bounded tool-calling loop.
"""

from videojob.pipeline.llm.client import ChatLLM, ModelEndpoint, RetryPolicy
from videojob.pipeline.llm.errors import redact, retry_after_seconds, retry_reason
from videojob.pipeline.llm.factory import (
    PROVIDER_EXTRAS,
    build_chat_model,
    client_kwargs,
    model_name,
    prepare,
    require_model,
    resolve_model,
    split_model,
)
from videojob.pipeline.llm.messages import add_usage, extract_code, text_of, usage_of
from videojob.pipeline.llm.tool_loop import MAX_TOOL_ROUNDS, answer_with_tools

__all__ = [
    "MAX_TOOL_ROUNDS", "PROVIDER_EXTRAS", "ChatLLM", "ModelEndpoint", "RetryPolicy", "add_usage",
    "answer_with_tools", "build_chat_model", "client_kwargs", "extract_code", "model_name", "prepare", "redact",
    "require_model", "resolve_model", "retry_after_seconds", "retry_reason", "split_model", "text_of", "usage_of",
]

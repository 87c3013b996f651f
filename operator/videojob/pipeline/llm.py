"""Chat models for planning and code generation.

`resolve_model` turns `spec.llm.model` (or VIDEOJOB_LLM_MODEL) into a LangChain chat model with
`init_chat_model`; `invoke` calls it and counts usage. A run with no model configured can still
render code and storyboards; only `spec.prompt` and `spec.editing` need one.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from videojob.api.models import LLMSpec
from videojob.pipeline.errors import LLMNotConfigured

_CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def model_name(spec: LLMSpec | None, default_model: str | None) -> str | None:
    return (spec.model if spec and spec.model else None) or default_model


def resolve_model(spec: LLMSpec | None, default_model: str | None, credentials: dict[str, str] | None = None) -> Any:
    """A chat model for the job, or None when no model is configured."""
    name = model_name(spec, default_model)
    if not name:
        return None
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {}
    if spec is not None:
        kwargs.update(temperature=spec.temperature, max_tokens=spec.max_tokens)
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
    try:
        return init_chat_model(name, **kwargs)
    except ImportError as exc:
        provider = name.split(":", 1)[0]
        raise LLMNotConfigured(
            f"spec.llm.model: provider {provider!r} is not installed ({exc}); "
            f"install the extra: pip install 'videojob-operator[{provider.split('_')[0]}]'"
        ) from None
    except ValueError as exc:
        raise LLMNotConfigured(f"spec.llm.model: {exc}") from None


def require_model(llm: Any, what: str) -> Any:
    if llm is None:
        raise LLMNotConfigured(
            f"{what} needs an LLM: set spec.llm.model (e.g. 'openai:gpt-4o-mini') "
            "or the operator's VIDEOJOB_LLM_MODEL"
        )
    return llm


def extract_code(message: BaseMessage | str) -> str:
    """The Python code in a model answer: the last fenced block, or the whole text."""
    text = message if isinstance(message, str) else _text_of(message)
    blocks = _CODE_BLOCK.findall(text)
    return (blocks[-1] if blocks else text).strip() + "\n"


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def usage_of(message: Any) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of one answer; 0s when the provider does not say."""
    meta = getattr(message, "usage_metadata", None) or {}
    return int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)


async def invoke(llm: Any, messages: list[BaseMessage] | Any, usage: dict[str, int]) -> AIMessage:
    """Call the model and add the call and its tokens to `usage` (the state's counters)."""
    answer = await llm.ainvoke(messages)
    prompt_tokens, completion_tokens = usage_of(answer)
    usage["llm_calls"] = usage.get("llm_calls", 0) + 1
    usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + prompt_tokens
    usage["completion_tokens"] = usage.get("completion_tokens", 0) + completion_tokens
    return answer

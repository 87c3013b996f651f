"""Model answers and usage: the text and code in an answer, the tokens it cost."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue

_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

# What a call accepts: messages, a prompt value (`PROMPT | llm.runnable(...)`), or plain text.
Prompt = PromptValue | str | list[BaseMessage]


def as_messages(prompt: Prompt) -> list[BaseMessage]:
    if isinstance(prompt, PromptValue):
        return list(prompt.to_messages())
    if isinstance(prompt, str):
        return [HumanMessage(prompt)]
    return list(prompt)


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def extract_code(message: BaseMessage | str) -> str:
    """The Python code in a model answer: the last fenced block, or the whole text."""
    text = message if isinstance(message, str) else text_of(message)
    blocks = _CODE_BLOCK.findall(text)
    return (blocks[-1] if blocks else text).strip() + "\n"


def usage_of(message: Any) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of one answer; 0s when the provider does not say."""
    meta = getattr(message, "usage_metadata", None) or {}
    return int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)


def add_usage(usage: dict[str, int], prompt_tokens: int, completion_tokens: int) -> None:
    usage["llm_calls"] = usage.get("llm_calls", 0) + 1
    usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + prompt_tokens
    usage["completion_tokens"] = usage.get("completion_tokens", 0) + completion_tokens

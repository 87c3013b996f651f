"""The code generator's tool loop: the model may call tools (Manim docs, the code check) a few
rounds before it answers; each round is one `ChatLLM.ainvoke` with the tools on offer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Sequence

from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage

from videojob.pipeline.llm.client import ChatLLM
from videojob.pipeline.llm.messages import Prompt, as_messages

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

# Tool rounds the code generator allows before it insists on an answer.
MAX_TOOL_ROUNDS = 4

_ANSWER_NOW = "No more tool calls. Answer now with the complete code in one ```python block."


async def answer_with_tools(
    llm: ChatLLM,
    prompt: Prompt,
    tools: Sequence[BaseTool],
    *,
    usage: dict[str, int],
    stage: str,
    max_rounds: int = MAX_TOOL_ROUNDS,
) -> AIMessage:
    """Answer with tools on offer: while the model asks for tool calls (at most `max_rounds`
    rounds), run them and send the results back; then one last call without tools."""
    by_name = {t.name: t for t in tools}
    history = as_messages(prompt)
    for round_ in range(max_rounds):
        answer = await llm.ainvoke(history, usage=usage, stage=stage, tools=tools)
        if not answer.tool_calls:
            return answer
        history.append(answer)
        for call in answer.tool_calls:
            history.append(await run_tool(by_name, call))
    if max_rounds > 0:
        history.append(HumanMessage(_ANSWER_NOW))
    return await llm.ainvoke(history, usage=usage, stage=stage)


async def run_tool(tools: dict[str, BaseTool], call: ToolCall) -> ToolMessage:
    """The tool's result as the model sees it; errors become messages the model can act on."""
    name, call_id = call.get("name", ""), call.get("id") or ""
    tool = tools.get(name)
    if tool is None:
        content = f"error: there is no tool {name!r}; available: {', '.join(sorted(tools)) or 'none'}"
        return ToolMessage(content=content, tool_call_id=call_id, name=name, status="error")
    try:
        result = await asyncio.to_thread(tool.invoke, call.get("args") or {})
    except Exception as exc:  # noqa: BLE001 - the model sees what went wrong and may try otherwise
        return ToolMessage(content=f"error: {type(exc).__name__}: {exc}"[:2000], tool_call_id=call_id, name=name, status="error")
    return ToolMessage(content=str(result)[:8000], tool_call_id=call_id, name=name)

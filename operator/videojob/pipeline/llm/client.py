"""`ChatLLM`: the job's model(s) and the one way they are called.

Every model call of the pipeline goes through `ChatLLM.ainvoke` (or `runnable`, its LCEL form),
which layers, from the inside out:

1. a per-call timeout (`spec.llm.requestTimeoutSeconds`; also given to the client itself),
2. the retry layer: tenacity, on rate limits (429), 5xx, timeouts, dropped connections and
   unreadable bodies, with exponential backoff and jitter (or the server's Retry-After). The
   provider clients' own retries are switched off (`max_retries=0`, botocore
   `total_max_attempts=1`) so retries never multiply;
3. `with_fallbacks` to `spec.llm.fallbackModel` (itself retried the same way), built once per
   set of offered tools and reused by every call;
4. the response cache keyed by (model, prompt hash), and usage accounting (`state.usage`, the
   `videojob_llm_*` metrics).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from videojob import metrics
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.errors import InvalidContent, PipelineError, TransientError
from videojob.pipeline.llm.errors import describe, redact, retry_after_seconds, retry_reason
from videojob.pipeline.llm.messages import Prompt, add_usage, as_messages, usage_of
from videojob.pipeline.llm_cache import ResponseCache, prompt_key

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

log = logging.getLogger("videojob.pipeline.llm")


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry layer of model calls."""

    attempts: int = 4
    initial_seconds: float = 1.0
    max_seconds: float = 30.0

    def wait_seconds(self, attempt: int, exc: BaseException | None) -> float:
        hinted = retry_after_seconds(exc) if exc is not None else None
        if hinted is not None:
            return min(hinted, self.max_seconds) + random.uniform(0, 0.05)
        ceiling = min(self.max_seconds, self.initial_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter": never 0, never in lockstep


@dataclass
class ModelEndpoint:
    name: str  # `provider:model` as configured: the metrics label and the cache key
    model: Runnable  # a LangChain chat model (or any Runnable from messages to AIMessage)


@dataclass
class _Failure:
    name: str
    error: BaseException
    attempts: int


@dataclass
class _Call:
    """The input of the (built once) fallback chain: one call's messages and bookkeeping."""

    messages: list[BaseMessage]
    stage: str
    failures: list[_Failure] = field(default_factory=list)


def _exception(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None and state.outcome.failed else None


class ChatLLM:
    """The job's model(s) and the policy every call follows (see the module docstring)."""

    def __init__(
        self,
        endpoints: Sequence[ModelEndpoint],
        *,
        timeout_seconds: float | None = None,
        retry: RetryPolicy | None = None,
        secrets: Sequence[str] = (),
        cache: ResponseCache | None = None,
        params: dict[str, object] | None = None,
        budget: UsageBudget | None = None,
    ):
        if not endpoints:
            raise ValueError("ChatLLM needs at least one model")
        self.budget = budget  # the per-job token cap, checked around every call that is made
        self.endpoints = list(endpoints)
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._secrets = tuple(s for s in secrets if s)
        self.cache = cache
        self.params = dict(params or {})
        self._chains: dict[tuple[str, ...], Runnable[_Call, AIMessage]] = {}

    def __repr__(self) -> str:  # never the models' reprs: keep anything secret-adjacent out of logs
        return f"ChatLLM({', '.join(e.name for e in self.endpoints)})"

    @classmethod
    def wrap(cls, llm: "ChatLLM | Runnable", name: str | None = None) -> "ChatLLM":
        """`llm` as a ChatLLM: returned as is when it already is one, else a single model."""
        if isinstance(llm, ChatLLM):
            return llm
        label = name or getattr(llm, "model_name", None) or getattr(llm, "model", None)
        return cls([ModelEndpoint(str(label) if isinstance(label, str) and label else type(llm).__name__, llm)])

    @property
    def name(self) -> str:
        return self.endpoints[0].name

    def with_cache(self, cache: ResponseCache | None) -> "ChatLLM":
        return ChatLLM(
            self.endpoints, timeout_seconds=self.timeout_seconds, retry=self.retry, secrets=self._secrets,
            cache=cache, params=self.params, budget=self.budget,
        )

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    # ------------------------------------------------------------------------- one call

    def runnable(self, *, usage: dict[str, int], stage: str, tools: Sequence[BaseTool] = ()) -> Runnable:
        """A Runnable from messages (or a prompt value: `prompt | llm.runnable(...)`) to AIMessage."""

        async def call(prompt: Prompt) -> AIMessage:
            return await self.ainvoke(prompt, usage=usage, stage=stage, tools=tools)

        return RunnableLambda(call, name="videojob_llm")

    async def ainvoke(
        self, prompt: Prompt, *, usage: dict[str, int], stage: str, tools: Sequence[BaseTool] = ()
    ) -> AIMessage:
        """One answer, through cache, fallbacks, retries and timeout; usage counted. Raises a
        PipelineError (TransientError when only transient failures happened) naming each model."""
        messages = as_messages(prompt)
        key = None
        if self.cache is not None:
            key = prompt_key(
                "|".join(e.name for e in self.endpoints), messages, tools=[t.name for t in tools], params=self.params
            )
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("LLM answer for %s taken from the cache", self.name)
                return hit
        if self.budget is not None:  # a cached answer costs nothing; a call may not pass the cap
            self.budget.before_llm_call(usage, stage or None)
        call = _Call(messages, stage)
        try:
            answer = await self._chain(tools).ainvoke(call)
        except PipelineError:
            raise
        except Exception:  # noqa: BLE001 - every model failed; call.failures holds why
            raise self._failure(call.failures, stage) from None
        add_usage(usage, *usage_of(answer))
        if key is not None:
            self.cache.put(key, answer)
        if self.budget is not None:
            self.budget.after_llm_call(usage, stage or None)
        return answer

    def _chain(self, tools: Sequence[BaseTool]) -> Runnable[_Call, AIMessage]:
        """The fallback chain for this set of tools, built on first use and kept."""
        key = tuple(t.name for t in tools)
        chain = self._chains.get(key)
        if chain is None:
            guarded = [RunnableLambda(self._guarded(e, self._bind(e.model, tools)), name=e.name) for e in self.endpoints]
            chain = guarded[0].with_fallbacks(guarded[1:]) if len(guarded) > 1 else guarded[0]
            self._chains[key] = chain
        return chain

    @staticmethod
    def _bind(model: Runnable, tools: Sequence[BaseTool]) -> Runnable:
        if not tools:
            return model
        try:
            return model.bind_tools(list(tools))  # type: ignore[attr-defined]
        except (NotImplementedError, AttributeError):
            # Models without tool calling get the same prompt, answered without tools.
            log.debug("model %s cannot bind tools; prompting without them", type(model).__name__)
            return model

    def _guarded(self, endpoint: ModelEndpoint, bound: Runnable):
        async def call(request: _Call) -> AIMessage:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.retry.attempts),
                retry=retry_if_exception(lambda exc: retry_reason(exc) is not None),
                wait=lambda state: self.retry.wait_seconds(state.attempt_number, _exception(state)),
                before_sleep=lambda state: self._before_retry(endpoint.name, request.stage, state),
                reraise=True,
            )
            attempts = 0
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        answer = await self._attempt(endpoint.name, bound, request.messages)
            except Exception as exc:
                request.failures.append(_Failure(endpoint.name, exc, attempts))
                raise
            return answer

        return call

    async def _attempt(self, name: str, bound: Runnable, messages: list[BaseMessage]) -> AIMessage:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds or None):
                answer = await bound.ainvoke(messages)
        except Exception as exc:
            reason = retry_reason(exc)
            result = {"RateLimited": "rate_limited", "Timeout": "timeout"}.get(reason or "", "error")
            metrics.record_llm_call(name, result, time.monotonic() - started)
            raise
        if isinstance(answer, str):
            answer = AIMessage(content=answer)
        prompt_tokens, completion_tokens = usage_of(answer)
        metrics.record_llm_call(name, "success", time.monotonic() - started, prompt_tokens, completion_tokens)
        answer.response_metadata = {**(answer.response_metadata or {}), "videojob_model": name}
        return answer

    def _before_retry(self, name: str, stage: str, state: RetryCallState) -> None:
        exc = _exception(state)
        reason = retry_reason(exc) if exc else "Unknown"
        metrics.record_retry(stage or "LLM", reason or "Unknown")
        wait = state.next_action.sleep if state.next_action else 0
        log.warning(
            "LLM call to %s failed (attempt %d, %s): %s; retrying in %.1f s",
            name, state.attempt_number, reason, self.redact(describe(exc)) if exc else "?", wait,
        )

    def _failure(self, failures: list[_Failure], stage: str) -> PipelineError:
        if not failures:
            return TransientError("the language model call failed", reason="LLMUnavailable", stage=stage or None)
        parts = []
        for f in failures:
            tries = f" after {f.attempts} attempt(s)" if f.attempts > 1 else ""
            parts.append(f"{f.name}: {describe(f.error)}{tries}")
        message = self.redact("the language model call failed: " + "; fallback ".join(parts))
        if all(retry_reason(f.error) for f in failures):
            return TransientError(message, reason="LLMUnavailable", stage=stage or None)
        return InvalidContent(message, reason="LLMRequestFailed", stage=stage or None)

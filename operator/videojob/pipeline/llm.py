"""Chat models for planning and code generation, and the one way they are called.

`resolve_model` turns `spec.llm` (or VIDEOJOB_LLM_MODEL) into a `ChatLLM`: the primary model built
with `init_chat_model("provider:model")`, an optional fallback model, and the call policy. Every
model call of the pipeline goes through `ChatLLM.runnable` / `ChatLLM.ainvoke`, which layer, from
the inside out:

1. a per-call timeout (`spec.llm.requestTimeoutSeconds`; also given to the client itself),
2. the retry layer: tenacity, on rate limits (429), 5xx, timeouts, dropped connections and
   unreadable bodies, with exponential backoff and jitter (or the server's Retry-After). The
   provider clients' own retries are switched off (`max_retries=0`, botocore
   `total_max_attempts=1`) so retries never multiply;
3. `with_fallbacks` to `spec.llm.fallbackModel` (itself retried the same way);
4. the response cache keyed by (model, prompt hash), and usage accounting (`state.usage`, the
   `videojob_llm_*` metrics).

Credentials come as a dict (the keys of `spec.llm.credentialsSecretRef`'s Secret, e.g.
OPENAI_API_KEY) and become client constructor arguments; they are never written to `os.environ`
(which the render sandbox would otherwise inherit a copy of), never logged, and scrubbed from
error messages that end up in status. Without a dict (`videojob run`), clients read their usual
environment variables or, for Bedrock, boto3's credential chain (IAM role, IRSA).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableLambda
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from videojob import metrics
from videojob.api.models import LLMSpec
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.errors import InvalidContent, LLMNotConfigured, PipelineError, TransientError
from videojob.pipeline.llm_cache import ResponseCache, prompt_key

log = logging.getLogger(__name__)

_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_PROVIDER = re.compile(r"^[a-z][a-z0-9_]*$")

# provider (init_chat_model's name) -> the pip extra of videojob-operator that installs its package
PROVIDER_EXTRAS = {
    "openai": "openai",
    "azure_openai": "openai",
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "anthropic_bedrock": "bedrock",
    "ollama": "ollama",
}
_BEDROCK = {"bedrock", "bedrock_converse", "anthropic_bedrock"}

# Secret keys understood per provider: key in the Secret -> client constructor argument.
_CREDENTIAL_ARGS = {
    "openai": {"OPENAI_API_KEY": "api_key", "OPENAI_ORG_ID": "organization", "OPENAI_ORGANIZATION": "organization"},
    "azure_openai": {"AZURE_OPENAI_API_KEY": "api_key", "AZURE_OPENAI_ENDPOINT": "azure_endpoint", "OPENAI_API_VERSION": "api_version"},
    "anthropic": {"ANTHROPIC_API_KEY": "api_key"},
    "bedrock": {
        "AWS_ACCESS_KEY_ID": "aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
        "AWS_SESSION_TOKEN": "aws_session_token",
        "AWS_DEFAULT_REGION": "region_name",
        "AWS_REGION": "region_name",  # after AWS_DEFAULT_REGION: AWS_REGION wins, as in boto3
    },
}

# Tool rounds the code generator allows before it insists on an answer.
MAX_TOOL_ROUNDS = 4


# ------------------------------------------------------------------------------ model selection


def model_name(spec: LLMSpec | None, default_model: str | None) -> str | None:
    return (spec.model if spec and spec.model else None) or default_model


def split_model(name: str) -> tuple[str, str]:
    """`provider:model` -> (provider, model). Bedrock ids keep their own colons."""
    provider, sep, model = name.partition(":")
    if not sep or not model or not _PROVIDER.match(provider):
        raise LLMNotConfigured(
            f"spec.llm.model: {name!r} is not `provider:model` (e.g. 'openai:gpt-4o-mini', "
            "'anthropic:claude-3-5-sonnet-latest', 'bedrock_converse:anthropic.claude-3-5-sonnet-20240620-v1:0', "
            "'ollama:llama3.1')",
            stage="Planning",
        )
    return provider, model


def client_kwargs(
    provider: str, spec: LLMSpec, credentials: dict[str, str] | None, base_url: str | None, *, sealed: bool = False
) -> dict[str, Any]:
    """Constructor arguments for the provider's chat model class: sampling, timeout, no client-side
    retries (ours are the only layer), and the credentials that apply to this provider.

    `sealed`: the endpoint is a tenant's (spec.llm.baseUrl under the operator), so the client
    gets `credentials` and nothing from the operator's environment (see `sealed_kwargs`)."""
    if sealed:
        return sealed_kwargs(provider, spec, credentials or {}, base_url)
    creds = credentials or {}
    timeout = float(spec.request_timeout_seconds)
    kwargs: dict[str, Any] = {"temperature": spec.temperature}
    family = "bedrock" if provider in _BEDROCK else provider
    for key, arg in _CREDENTIAL_ARGS.get(family, {}).items():
        if creds.get(key):
            kwargs[arg] = creds[key]
    if family == "azure_openai":
        kwargs.update(max_tokens=spec.max_tokens, timeout=timeout, max_retries=0)
        if base_url:
            kwargs["azure_endpoint"] = base_url
    elif family == "openai":
        kwargs.update(max_tokens=spec.max_tokens, timeout=timeout, max_retries=0)
        url = base_url or creds.get("OPENAI_BASE_URL")
        if url:
            kwargs["base_url"] = url
            # Local OpenAI-compatible servers (vLLM, llama.cpp, LM Studio) take no key, but the
            # client refuses to start without one.
            if "api_key" not in kwargs and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = "not-needed"
    elif family == "anthropic":
        kwargs.update(max_tokens=spec.max_tokens, timeout=timeout, max_retries=0)
        if base_url:
            kwargs["base_url"] = base_url
    elif family == "bedrock":
        from botocore.config import Config

        kwargs.update(
            max_tokens=spec.max_tokens,
            config=Config(read_timeout=timeout, connect_timeout=min(timeout, 10.0), retries={"total_max_attempts": 1}),
        )
        if base_url:
            kwargs["endpoint_url"] = base_url
    elif family == "ollama":
        kwargs.update(num_predict=spec.max_tokens, client_kwargs={"timeout": timeout})
        if base_url:
            kwargs["base_url"] = base_url
    else:
        # Other providers: the generic arguments only (their client may retry on its own).
        kwargs["max_tokens"] = spec.max_tokens
        if base_url:
            kwargs["base_url"] = base_url
    return kwargs


def sealed_kwargs(provider: str, spec: LLMSpec, credentials: dict[str, str], base_url: str | None) -> dict[str, Any]:
    """Arguments for a client talking to a tenant's own endpoint: every credential and identity
    the client would otherwise take from the operator's environment is given explicitly, from
    the VideoJob's Secret or as a placeholder (keyless OpenAI-compatible servers)."""
    if provider != "openai" or not base_url:
        # The admission policy lets a baseUrl through only with these providers.
        raise LLMNotConfigured(f"spec.llm.baseUrl: provider {provider!r} cannot be used with a VideoJob's own endpoint")
    organization = credentials.get("OPENAI_ORG_ID") or credentials.get("OPENAI_ORGANIZATION")
    headers = {} if organization else {"OpenAI-Organization": ""}  # else OPENAI_ORG_ID would be sent
    headers["OpenAI-Project"] = ""  # the openai client would send OPENAI_PROJECT_ID
    kwargs: dict[str, Any] = {
        "temperature": spec.temperature, "max_tokens": spec.max_tokens,
        "timeout": float(spec.request_timeout_seconds), "max_retries": 0,
        "base_url": base_url, "api_key": credentials.get("OPENAI_API_KEY") or "not-needed",
        "default_headers": headers,
    }
    if organization:
        kwargs["organization"] = organization
    return kwargs


def build_chat_model(
    name: str, spec: LLMSpec, credentials: dict[str, str] | None, base_url: str | None, *, sealed: bool = False
) -> Any:
    """One LangChain chat model for `provider:model`. Builds the client; calls nothing."""
    from langchain.chat_models import init_chat_model

    provider, model = split_model(name)
    try:
        kwargs = client_kwargs(provider, spec, credentials, base_url, sealed=sealed)
        return init_chat_model(model, model_provider=provider, **kwargs)
    except ImportError:
        extra = PROVIDER_EXTRAS.get(provider)
        hint = (
            f"pip install 'videojob-operator[{extra}]'"
            if extra
            else f"install its LangChain integration (pip install langchain-{provider.replace('_', '-')})"
        )
        raise LLMNotConfigured(
            f"spec.llm.model: the package for provider {provider!r} is not installed; {hint}", stage="Planning"
        ) from None
    except Exception as exc:  # noqa: BLE001 - unknown provider, missing key, bad argument: all spec problems
        message = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, (credentials or {}).values())
        raise LLMNotConfigured(f"spec.llm.model: cannot use {name!r}: {message}", stage="Planning") from None


def resolve_model(
    spec: LLMSpec | None, default_model: str | None, credentials: dict[str, str] | None = None, *,
    tenant: bool = False,
) -> "ChatLLM | None":
    """The job's `ChatLLM`, or None when no model is configured. Raises LLMNotConfigured when the
    model string is malformed or its provider package is missing (the message names the extra).

    `tenant`: the job is a tenant's (under the operator): a model called at spec.llm.baseUrl
    gets only `credentials`, never the operator's environment."""
    name = model_name(spec, default_model)
    if not name:
        return None
    spec = spec or LLMSpec()
    sealed = tenant and spec.base_url is not None
    endpoints = [ModelEndpoint(name, build_chat_model(name, spec, credentials, spec.base_url, sealed=sealed))]
    if spec.fallback_model:
        # The base URL belongs to the primary's server; a fallback of the same provider shares it.
        same_provider = split_model(spec.fallback_model)[0] == split_model(name)[0]
        fallback = build_chat_model(
            spec.fallback_model, spec, credentials, spec.base_url if same_provider else None,
            sealed=sealed and same_provider,
        )
        endpoints.append(ModelEndpoint(spec.fallback_model, fallback))
    return ChatLLM(
        endpoints,
        timeout_seconds=spec.request_timeout_seconds,
        secrets=list((credentials or {}).values()),
        params={"temperature": spec.temperature, "max_tokens": spec.max_tokens},
    )


def require_model(llm: Any, what: str) -> Any:
    if llm is None:
        raise LLMNotConfigured(
            f"{what} needs an LLM: set spec.llm.model (e.g. 'openai:gpt-4o-mini') "
            "or the operator's VIDEOJOB_LLM_MODEL"
        )
    return llm


# -------------------------------------------------------------------------------- answers


def extract_code(message: BaseMessage | str) -> str:
    """The Python code in a model answer: the last fenced block, or the whole text."""
    text = message if isinstance(message, str) else text_of(message)
    blocks = _CODE_BLOCK.findall(text)
    return (blocks[-1] if blocks else text).strip() + "\n"


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


_text_of = text_of  # older name


def usage_of(message: Any) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of one answer; 0s when the provider does not say."""
    meta = getattr(message, "usage_metadata", None) or {}
    return int(meta.get("input_tokens", 0) or 0), int(meta.get("output_tokens", 0) or 0)


def add_usage(usage: dict[str, int], prompt_tokens: int, completion_tokens: int) -> None:
    usage["llm_calls"] = usage.get("llm_calls", 0) + 1
    usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + prompt_tokens
    usage["completion_tokens"] = usage.get("completion_tokens", 0) + completion_tokens


# ------------------------------------------------------------------------- error classification


def redact(text: str, secrets: Any) -> str:
    """`text` with every credential value in it replaced by ***."""
    for value in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = (response.get("Error") or {}).get("Code", "")
        if code in ("ThrottlingException", "TooManyRequestsException"):
            return 429
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


_TIMEOUT_NAMES = {"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "ReadTimeoutError", "ConnectTimeoutError"}
_CONNECTION_NAMES = {
    "APIConnectionError", "ConnectError", "RemoteProtocolError", "TransportError", "EndpointConnectionError",
    "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
}


def retry_reason(exc: BaseException) -> str | None:
    """Why a failed call is worth another try (the `reason` of videojob_retries_total), or None
    when retrying cannot help (bad request, bad key, unknown model)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & _TIMEOUT_NAMES:
        return "Timeout"
    if isinstance(exc, json.JSONDecodeError):
        # A 200 whose body is not JSON: typically a proxy's error page under load.
        return "MalformedResponse"
    status = _status_code(exc)
    if status == 429:
        return "RateLimited"
    if status is not None and status >= 400:
        return "ServerError" if status >= 500 or status == 408 else None
    if isinstance(exc, ConnectionError) or names & _CONNECTION_NAMES:
        return "ConnectionError"
    return None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After (or retry-after-ms) hint, in seconds, if it gave one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    else:
        headers = getattr(response, "headers", None) or {}
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def _describe(exc: BaseException) -> str:
    status = _status_code(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:300]
    kind = type(exc).__name__
    if status is not None and status >= 400 and str(status) not in text:
        return f"{kind} (HTTP {status}): {text}"
    return f"{kind}: {text}" if text else kind


# ------------------------------------------------------------------------------- the caller


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
    model: Any  # a LangChain chat model (or any Runnable from messages to AIMessage)


@dataclass
class _Failure:
    name: str
    error: BaseException
    attempts: int


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
        params: dict[str, Any] | None = None,
        budget: UsageBudget | None = None,
    ):
        if not endpoints:
            raise ValueError("ChatLLM needs at least one model")
        self.budget = budget
        self.endpoints = list(endpoints)
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._secrets = tuple(s for s in secrets if s)
        self.cache = cache
        self.params = dict(params or {})

    def __repr__(self) -> str:  # never the models' reprs: keep anything secret-adjacent out of logs
        return f"ChatLLM({', '.join(e.name for e in self.endpoints)})"

    @classmethod
    def wrap(cls, llm: Any, name: str | None = None) -> "ChatLLM":
        """`llm` as a ChatLLM: returned as is when it already is one, else a single model."""
        if isinstance(llm, ChatLLM):
            return llm
        label = name or getattr(llm, "model_name", None) or getattr(llm, "model", None)
        return cls([ModelEndpoint(str(label) if isinstance(label, str) and label else type(llm).__name__, llm)])

    @property
    def name(self) -> str:
        return self.endpoints[0].name

    def with_cache(self, cache: ResponseCache | None) -> "ChatLLM":
        clone = ChatLLM(
            self.endpoints, timeout_seconds=self.timeout_seconds, retry=self.retry, secrets=self._secrets,
            cache=cache, params=self.params, budget=self.budget,
        )
        return clone

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    # ------------------------------------------------------------------------- one call

    def runnable(self, *, usage: dict[str, int], stage: str, tools: Sequence[Any] = ()) -> Runnable:
        """A Runnable from messages (or a prompt value: `prompt | llm.runnable(...)`) to AIMessage."""

        async def call(messages: Any) -> AIMessage:
            return await self.ainvoke(messages, usage=usage, stage=stage, tools=tools)

        return RunnableLambda(call, name="videojob_llm")

    async def ainvoke(
        self, messages: Any, *, usage: dict[str, int], stage: str, tools: Sequence[Any] = ()
    ) -> AIMessage:
        """One answer, through cache, fallbacks, retries and timeout; usage counted. Raises a
        PipelineError (TransientError when only transient failures happened) naming each model."""
        messages = _as_messages(messages)
        key = None
        if self.cache is not None:
            key = prompt_key(
                "|".join(e.name for e in self.endpoints), messages, tools=[t.name for t in tools], params=self.params
            )
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("LLM answer for %s taken from the cache", self.name)
                return hit
        if self.budget is not None:  # a cached answer costs nothing; a call may not exceed the cap
            self.budget.before_llm_call(usage, stage or None)
        failures: list[_Failure] = []
        chains = [RunnableLambda(self._guarded(e, tools, stage, failures), name=e.name) for e in self.endpoints]
        chain = chains[0].with_fallbacks(chains[1:]) if len(chains) > 1 else chains[0]
        try:
            answer = await chain.ainvoke(messages)
        except PipelineError:
            raise
        except Exception:  # noqa: BLE001 - every model failed; failures holds why
            raise self._failure(failures, stage) from None
        add_usage(usage, *usage_of(answer))
        if key is not None:
            self.cache.put(key, answer)
        if self.budget is not None:
            self.budget.after_llm_call(usage, stage or None)
        return answer

    def _bind(self, model: Any, tools: Sequence[Any]) -> Any:
        if not tools:
            return model
        try:
            return model.bind_tools(list(tools))
        except (NotImplementedError, AttributeError):
            # Models without tool calling get the same prompt, answered without tools.
            log.debug("model %s cannot bind tools; prompting without them", type(model).__name__)
            return model

    def _guarded(self, endpoint: ModelEndpoint, tools: Sequence[Any], stage: str, failures: list[_Failure]):
        bound = self._bind(endpoint.model, tools)

        async def call(messages: list[BaseMessage]) -> AIMessage:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.retry.attempts),
                retry=retry_if_exception(lambda exc: retry_reason(exc) is not None),
                wait=lambda state: self.retry.wait_seconds(state.attempt_number, _exception(state)),
                before_sleep=lambda state: self._before_retry(endpoint.name, stage, state),
                reraise=True,
            )
            attempts = 0
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        answer = await self._attempt(endpoint.name, bound, messages)
            except Exception as exc:
                failures.append(_Failure(endpoint.name, exc, attempts))
                raise
            return answer

        return call

    async def _attempt(self, name: str, bound: Any, messages: list[BaseMessage]) -> AIMessage:
        started = time.monotonic()
        try:
            if self.timeout_seconds:
                async with asyncio.timeout(self.timeout_seconds):
                    answer = await bound.ainvoke(messages)
            else:
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
            name, state.attempt_number, reason, self.redact(_describe(exc)) if exc else "?", wait,
        )

    def _failure(self, failures: list[_Failure], stage: str) -> PipelineError:
        if not failures:
            return TransientError("the language model call failed", reason="LLMUnavailable", stage=stage or None)
        parts = []
        for f in failures:
            tries = f" after {f.attempts} attempt(s)" if f.attempts > 1 else ""
            parts.append(f"{f.name}: {_describe(f.error)}{tries}")
        message = self.redact("the language model call failed: " + "; fallback ".join(parts))
        if all(retry_reason(f.error) for f in failures):
            return TransientError(message, reason="LLMUnavailable", stage=stage or None)
        return InvalidContent(message, reason="LLMRequestFailed", stage=stage or None)

    # ---------------------------------------------------------------------- tool calling

    async def ainvoke_with_tools(
        self,
        messages: Any,
        tools: Sequence[Any],
        *,
        usage: dict[str, int],
        stage: str,
        max_rounds: int = MAX_TOOL_ROUNDS,
    ) -> AIMessage:
        """Answer with tools on offer: while the model asks for tool calls (at most `max_rounds`
        rounds), run them and send the results back; then one last call without tools."""
        by_name = {t.name: t for t in tools}
        history = _as_messages(messages)
        for round_ in range(max_rounds + 1):
            last = round_ == max_rounds
            if last and round_ > 0:
                history.append(HumanMessage("No more tool calls. Answer now with the complete code in one ```python block."))
            answer = await self.ainvoke(history, usage=usage, stage=stage, tools=() if last else tools)
            if not answer.tool_calls or last:
                return answer
            history.append(answer)
            for call in answer.tool_calls:
                history.append(await _run_tool(by_name, call))
        raise AssertionError("unreachable")


def _exception(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None and state.outcome.failed else None


def _as_messages(messages: Any) -> list[BaseMessage]:
    if hasattr(messages, "to_messages"):
        return list(messages.to_messages())
    if isinstance(messages, str):
        return [HumanMessage(messages)]
    return list(messages)


async def _run_tool(tools: dict[str, Any], call: dict[str, Any]) -> ToolMessage:
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


# -------------------------------------------------------------------------- pipeline glue


def chat_client(ctx: Any, what: str = "spec.prompt") -> ChatLLM:
    """The run's ChatLLM (built once per run and kept in ctx.extra), with the response cache
    under `<cache_dir>/../llm` when the model has a configured name to key it by."""
    client = ctx.extra.get("chat_llm")
    if client is None:
        llm = require_model(ctx.llm, what)
        client = ChatLLM.wrap(llm, ctx.llm_model_name)
        if isinstance(llm, ChatLLM) or ctx.llm_model_name:
            # An anonymous model (no name) cannot be told apart from another one: no cache then.
            client = client.with_cache(ResponseCache(ctx.cache_dir.parent / "llm"))
        client.budget = ctx.budget
        ctx.extra["chat_llm"] = client
    return client


async def invoke(llm: Any, messages: list[BaseMessage] | Any, usage: dict[str, int], stage: str = "") -> AIMessage:
    """Call `llm` once (retries, timeout and fallbacks when it is a ChatLLM) and count usage."""
    return await ChatLLM.wrap(llm).ainvoke(messages, usage=usage, stage=stage)

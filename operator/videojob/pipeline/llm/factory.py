"""From `spec.llm` (or VIDEOJOB_LLM_MODEL) to the job's `ChatLLM`: provider selection, client
arguments and credentials. Builds clients; calls nothing.

Credentials come as a dict (the keys of `spec.llm.credentialsSecretRef`'s Secret, e.g.
OPENAI_API_KEY) and become client constructor arguments; they are never written to `os.environ`
(which the render sandbox would otherwise inherit a copy of), never logged, and scrubbed from
error messages that end up in status. Without a dict (`videojob run`), clients read their usual
environment variables or, for Bedrock, boto3's credential chain (IAM role, IRSA).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videojob.api.models import LLMSpec
from videojob.pipeline.budget import UsageBudget
from videojob.pipeline.errors import LLMNotConfigured
from videojob.pipeline.llm.client import ChatLLM, ModelEndpoint
from videojob.pipeline.llm.errors import redact
from videojob.pipeline.llm_cache import ResponseCache

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

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
        # The admission policy (videojob.policy) lets a baseUrl through only with these providers.
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
) -> BaseChatModel:
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
    spec: LLMSpec | None, default_model: str | None, credentials: dict[str, str] | None = None, *, tenant: bool = False,
) -> ChatLLM | None:
    """The job's `ChatLLM`, or None when no model is configured. Raises LLMNotConfigured when the
    model string is malformed or its provider package is missing (the message names the extra).
    `tenant`: the job is a tenant's (under the operator): a model called at spec.llm.baseUrl gets
    only `credentials`, never the operator's environment."""
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


def require_model(llm: ChatLLM | None, what: str) -> ChatLLM:
    if llm is None:
        raise LLMNotConfigured(
            f"{what} needs an LLM: set spec.llm.model (e.g. 'openai:gpt-4o-mini') "
            "or the operator's VIDEOJOB_LLM_MODEL"
        )
    return llm


def prepare(
    llm: ChatLLM | BaseChatModel | None, name: str | None, cache_root: Path, budget: UsageBudget | None = None
) -> ChatLLM | None:
    """The run's `ChatLLM` from what the caller gave (a ChatLLM, a LangChain model or None), with
    the answer cache under `cache_root` when the model has a name to key it by, and the run's
    per-job token cap (`budget`)."""
    if llm is None:
        return None
    client = ChatLLM.wrap(llm, name)
    if isinstance(llm, ChatLLM) or name:
        # An anonymous model (no name) cannot be told apart from another one: no cache then.
        client = client.with_cache(ResponseCache(cache_root))
    client.budget = budget
    return client

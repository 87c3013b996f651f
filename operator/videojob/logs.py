"""Logging set-up: text or JSON lines, VideoJob identity on every line about a job, secrets masked.

- `configure_logging("json")` writes one JSON object per line to stderr: `time`, `level`,
  `logger`, `message`, plus `namespace`, `name`, `generation` when the line is about a VideoJob,
  `exception` for tracebacks and any `extra={...}` fields of plain JSON types.
- `job_context(namespace, name, generation)` (a context manager and a decorator) marks the code
  working on one VideoJob. It lives in a `contextvars.ContextVar`, so asyncio tasks and
  `asyncio.to_thread` calls started inside it carry it too. Kopf's own per-object lines (which
  carry `k8s_ref`) get namespace/name from there and the generation last seen in a job_context.
- `redact(value)` registers a secret (an LLM key read from a Secret, say): it is masked in every
  line from then on, as are common credential shapes (AWS secret keys, `sk-...` API keys,
  `Bearer ...` tokens, `password=...`). Masking happens in the handler, so every logger's
  records pass through it, whoever created them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import inspect
import json
import logging
import os
import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TextIO

MASK = "[REDACTED]"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # AWS secret access key next to its name (a bare 40-character string may be a git sha).
    (re.compile(r"(?i)((?:aws_)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"), rf"\g<1>{MASK}"),
    (re.compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{4})[A-Z0-9]{12}\b"), rf"\g<1>{MASK}"),
    # OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-...
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), MASK),
    (re.compile(r"(?i)\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)\b((?:api[_-]?key|password|passwd|secret|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{6,}"),
     rf"\g<1>{MASK}"),
]


class _SecretRegistry:
    """Known secret values; one compiled alternation, longest first (a key containing another)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        value = value.strip() if isinstance(value, str) else ""
        if len(value) < _MIN_SECRET_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text


_SECRETS = _SecretRegistry()


def redact(value: str) -> str:
    """Register `value` as a secret: it never appears in log output from now on. Returns it."""
    _SECRETS.add(value)
    return value


# Environment variables whose values are credentials (LLM keys, AWS keys, tokens).
_SECRET_ENV = re.compile(r"(?i)(API_KEY|SECRET_ACCESS_KEY|SESSION_TOKEN|_TOKEN|PASSWORD|_SECRET)$")


def redact_environment(environ: Any = None) -> None:
    """Register the values of credential-looking environment variables (OPENAI_API_KEY, ...)."""
    for key, value in (os.environ if environ is None else environ).items():
        if _SECRET_ENV.search(key) and value:
            _SECRETS.add(value)


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    _SECRETS.clear()


def mask(text: str) -> str:
    """`text` with registered secrets and credential-shaped strings replaced by MASK."""
    text = _SECRETS.mask(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --------------------------------------------------------------------------- job context


@dataclass(frozen=True)
class JobRef:
    namespace: str | None
    name: str | None
    generation: int | None

    def fields(self) -> dict[str, Any]:
        out = {"namespace": self.namespace, "name": self.name, "generation": self.generation}
        return {k: v for k, v in out.items() if v is not None}


_CURRENT: contextvars.ContextVar[JobRef | None] = contextvars.ContextVar("videojob_job", default=None)
_GENERATIONS: OrderedDict[tuple[str, str], int] = OrderedDict()
_GENERATIONS_MAX = 10_000
_GENERATIONS_LOCK = threading.Lock()


def _remember(ref: JobRef) -> None:
    if ref.namespace is None or ref.name is None or ref.generation is None:
        return
    with _GENERATIONS_LOCK:
        _GENERATIONS[(ref.namespace, ref.name)] = ref.generation
        _GENERATIONS.move_to_end((ref.namespace, ref.name))
        while len(_GENERATIONS) > _GENERATIONS_MAX:
            _GENERATIONS.popitem(last=False)


def remember_object(body: Any) -> None:
    """Note a VideoJob's metadata.generation from a watch event, so Kopf's own lines about the
    object (which name it but not its generation) carry the generation too."""
    meta = (body or {}).get("metadata") or {}
    if meta.get("generation") is not None:
        _remember(JobRef(meta.get("namespace"), meta.get("name"), int(meta["generation"])))


def current_job() -> JobRef | None:
    return _CURRENT.get()


class job_context(contextlib.ContextDecorator):
    """Lines logged inside carry this VideoJob's namespace, name and generation.

    `with job_context(ns, name, gen): ...`, or `@job_context(ns, name, gen)` on a function
    (sync or async). Nesting is allowed; the innermost wins.
    """

    def __init__(self, namespace: str | None, name: str | None, generation: int | None = None):
        self.ref = JobRef(namespace, name, int(generation) if generation is not None else None)
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> JobRef:
        _remember(self.ref)
        self._tokens.append(_CURRENT.set(self.ref))
        return self.ref

    def __exit__(self, *exc: Any) -> None:
        _CURRENT.reset(self._tokens.pop())

    def _recreate_cm(self) -> "job_context":
        # A fresh instance per decorated call: concurrent calls must not share the token stack.
        return job_context(self.ref.namespace, self.ref.name, self.ref.generation)

    def __call__(self, fn: Callable) -> Callable:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._recreate_cm():
                    return await fn(*args, **kwargs)

            return wrapper
        return super().__call__(fn)


def _job_fields(record: logging.LogRecord) -> dict[str, Any]:
    ref = getattr(record, "videojob", None) or _CURRENT.get()
    if isinstance(ref, JobRef):
        return ref.fields()
    k8s_ref = getattr(record, "k8s_ref", None)  # Kopf's per-object loggers
    if isinstance(k8s_ref, dict) and k8s_ref.get("name"):
        ns, name = k8s_ref.get("namespace"), k8s_ref.get("name")
        fields = {"namespace": ns, "name": name}
        with _GENERATIONS_LOCK:
            generation = _GENERATIONS.get((ns, name))
        if generation is not None:
            fields["generation"] = generation
        return {k: v for k, v in fields.items() if v is not None}
    return {}


# --------------------------------------------------------------------------- filter, formatters


class JobContextFilter(logging.Filter):
    """Stamps `record.videojob` (a JobRef) while the record is still in the caller's context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "videojob", None) is None:
            ref = _CURRENT.get()
            if ref is not None:
                record.videojob = ref
        return True


class RedactingFilter(logging.Filter):
    """Masks secrets in the rendered message (args included) before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg} {record.args}"
        masked = mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message", "asctime", "videojob", "taskName",
    "k8s_ref", "k8s_skip", "settings",  # Kopf's per-object logger extras
}


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return mask(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        doc: dict[str, Any] = {
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        doc.update(_job_fields(record))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in doc:
                doc[key] = _plain(value)
        if record.exc_info:
            doc["exception"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = mask(record.exc_text)
        if record.stack_info:
            doc["stack"] = mask(self.formatStack(record.stack_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [namespace/name#generation] message`, secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(job)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = _job_fields(record)
        job = ""
        if fields.get("name"):
            job = f" [{fields.get('namespace', '')}/{fields['name']}"
            job += f"#{fields['generation']}]" if "generation" in fields else "]"
        record.job = job
        try:
            return mask(super().format(record))
        finally:
            del record.job


_HANDLER_MARK = "_videojob_handler"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time (pytest and tools swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr


def configure_logging(fmt: str = "text", level: int | str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Install one root handler writing `fmt` ("text" | "json") to `stream` (stderr).

    Values of credential-looking environment variables (OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY,
    ...) are registered for masking. Calling it again replaces the handler installed by the
    previous call (not others'). Returns the handler, for tests that want to remove it.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")
    redact_environment()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobContextFilter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # warnings become log lines too: stderr stays one format
    return handler


@contextlib.contextmanager
def captured_logging(fmt: str, stream: TextIO, level: int | str = "INFO") -> Iterator[logging.Handler]:
    """configure_logging for a block, restoring the root logger's handlers and level after it."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        yield configure_logging(fmt, level, stream)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)

"""Load and validate VideoJob manifests, turning every problem into a message that names the field.

Used by `videojob run` (a file) and by the operator (a dict the API server admitted). Callers get
`InvalidVideoJob` with one line per problem, never a pydantic traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from videojob.api.models import SLUG_PATTERN, VideoJob

# A manifest is a few KB. Up to this size we still parse it, so that an oversized field is
# reported by name (spec.prompt: too long); beyond it the file itself is refused.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024

# libyaml's parser when present: a 10 MB document in milliseconds instead of seconds.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InvalidVideoJob(ValueError):
    """The manifest or spec is invalid. `problems` holds `field: message` lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "(document)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_too_long":
        return f"too long: {len(value) if isinstance(value, str) else '?'} characters, at most {ctx.get('max_length')}"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} character(s)"
    if kind == "too_long":
        return f"too many items: {ctx.get('actual_length')}, at most {ctx.get('max_length')}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        shown = value if isinstance(value, str) and len(value) < 80 else "value"
        return f"{shown!r} must match {ctx.get('pattern')} (lowercase letters, digits, '-')"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{error['msg'].lower()} (got {value!r})"
    if kind == "literal_error":
        return f"{error['msg']} (got {value!r})"
    if kind == "enum":
        return f"{error['msg']} (got {value!r})"
    return error["msg"]


def from_validation_error(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> InvalidVideoJob:
    problems = []
    for error in exc.errors():
        problems.append(f"{_field_path(prefix + tuple(error['loc']))}: {_describe(error)}")
    return InvalidVideoJob(problems)


def parse_videojob(document: Any) -> VideoJob:
    """Validate one manifest dict. Raises InvalidVideoJob."""
    if not isinstance(document, dict):
        raise InvalidVideoJob([f"(document): expected a mapping (a VideoJob object), got {type(document).__name__}"])
    problems = []
    if document.get("apiVersion") != "videogen.io/v1alpha1":
        problems.append(f"apiVersion: expected 'videogen.io/v1alpha1', got {document.get('apiVersion')!r}")
    if document.get("kind") != "VideoJob":
        problems.append(f"kind: expected 'VideoJob', got {document.get('kind')!r}")
    if problems:
        raise InvalidVideoJob(problems)
    try:
        job = VideoJob.model_validate(document)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    check_semantics(job)
    return job


def check_semantics(job: VideoJob) -> None:
    """Rules the CRD schema cannot state. Raises InvalidVideoJob."""
    problems = []
    if job.spec.source == "none":
        problems.append("spec: needs one content source: spec.code, spec.storyboard or spec.prompt")
    if job.spec.video_id is None and not re.match(SLUG_PATTERN, job.metadata.name):
        problems.append(
            f"metadata.name: {job.metadata.name!r} cannot serve as the video id "
            "(lowercase letters, digits, '-', at most 63); set spec.videoId"
        )
    if job.spec.project_id is None and job.metadata.namespace and not re.match(SLUG_PATTERN, job.metadata.namespace):
        problems.append(f"metadata.namespace: {job.metadata.namespace!r} cannot serve as the project id; set spec.projectId")
    if problems:
        raise InvalidVideoJob(problems)


def check_runnable(job: VideoJob, llm: object | None) -> None:
    """Problems that make the job impossible before any work starts. Raises InvalidVideoJob.

    `llm`: the run's model, or any non-None value meaning "one is configured" (the operator
    checks without building a client)."""
    spec = job.spec
    if llm is None and (spec.source == "prompt" or spec.editing is not None):
        field_name = "spec.editing.feedback" if spec.editing is not None else "spec.prompt"
        raise InvalidVideoJob(
            [f"{field_name}: needs an LLM: set spec.llm.model (e.g. 'openai:gpt-4o-mini') or VIDEOJOB_LLM_MODEL"]
        )


def load_manifest(path: str | Path) -> VideoJob:
    """Read one VideoJob from a YAML file. Raises InvalidVideoJob for anything wrong with it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise InvalidVideoJob([f"{path}: file is {size} bytes; a manifest may be at most {MAX_MANIFEST_BYTES}"])
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidVideoJob([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidVideoJob([f"{path}: not UTF-8 text (bad byte at offset {exc.start})"]) from None
    try:
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidVideoJob([f"{path}: not valid YAML{where}: {problem}"]) from None
    if len(documents) != 1:
        raise InvalidVideoJob([f"{path}: expected exactly one VideoJob document, found {len(documents)}"])
    return parse_videojob(documents[0])

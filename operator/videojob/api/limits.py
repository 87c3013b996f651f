"""Size limits that come from Kubernetes, not from us: the spec must fit in annotations, status
messages must fit in the status schema.

Spec size. All annotations of an object share 256 KiB. Kopf keeps the whole spec in
`kopf.zalando.org/last-handled-configuration` (JSON with ASCII escapes: a CJK character takes 6
bytes, an emoji 12) and `kubectl apply` keeps it again in `last-applied-configuration` (UTF-8,
with `<`, `>`, `&` escaped). A spec larger than what fits is refused by the API server on Kopf's
annotation patch, again and again. So the free text of a spec is bounded in UTF-8 bytes, which
bound both copies: per UTF-8 byte at most 4 bytes of annotations in total (1-2 in each copy for
ASCII with its usual escapes; 6 + 3 for a 3-byte CJK character; 12 + 4 for a 4-byte emoji).
The CRD checks it with one CEL rule (`spec_size_rule`), the operator and `videojob run` with the
same walk over the same fields (`spec_text_bytes`).
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

ANNOTATIONS_LIMIT = 256 * 1024
# Labels, other annotations, field names and numbers of the spec, Argo CD's tracking id, ...
ANNOTATIONS_RESERVE = 32 * 1024
BYTES_PER_TEXT_BYTE = 4
MAX_SPEC_TEXT_BYTES = (ANNOTATIONS_LIMIT - ANNOTATIONS_RESERVE) // BYTES_PER_TEXT_BYTE  # 57,344
# Strings shorter than this (names, enums, model ids) live in the reserve.
_TEXT_MIN_LENGTH = 200

SPEC_TOO_LARGE = (
    f"spec is too large: its text (topic, description, code, prompt, storyboard, editing feedback) may "
    f"hold at most {MAX_SPEC_TEXT_BYTES} bytes of UTF-8 in total, so that the copies Kopf and kubectl keep "
    f"in annotations fit Kubernetes' 256 KiB; shorten it or split the video into several VideoJobs"
)

# status.message and condition/stage messages (metav1.Condition allows 32768; ours are one line).
MAX_STATUS_MESSAGE = 4096


def truncate_message(message: str | None, limit: int = MAX_STATUS_MESSAGE) -> str | None:
    """`message` cut to `limit` characters, keeping its start and its end (where errors say why)."""
    if message is None or len(message) <= limit:
        return message
    head = limit // 4
    tail = limit - head - 5
    return message[:head] + " ... " + message[-tail:]


# ------------------------------------------------------------------------------ the walk


def _inner(annotation: Any) -> Any:
    """X from X | None and Annotated[X, ...]."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _max_length(field: Any) -> int | None:
    for meta in field.metadata:
        if getattr(meta, "max_length", None) is not None:
            return meta.max_length
    return None


def _item_max_length(annotation: Any) -> int | None:
    """max_length of the str items of Annotated[list[Annotated[str, StringConstraints(...)]], ...]."""
    while typing.get_origin(annotation) is typing.Annotated or typing.get_origin(annotation) in (typing.Union,):
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if not args:
        return None
    for meta in getattr(args[0], "__metadata__", ()):
        if getattr(meta, "max_length", None) is not None:
            return meta.max_length
    return None


def text_fields(model: type[BaseModel]) -> list[tuple[str, str, Any]]:
    """(wire name, kind, detail) of the free text of `model`: kind is "str" (detail: required?),
    "strs" (a list of strings), "model" (detail: (required, sub-model)) or "models" (a list)."""
    out = []
    for name, field in model.model_fields.items():
        wire = field.alias or name
        inner = _inner(field.annotation)
        origin = typing.get_origin(inner)
        if inner is str and (_max_length(field) or 0) >= _TEXT_MIN_LENGTH:
            out.append((wire, "str", field.is_required()))
        elif origin is list and _inner(typing.get_args(inner)[0]) is str:
            if (_item_max_length(field.annotation) or 0) >= _TEXT_MIN_LENGTH:
                out.append((wire, "strs", field.is_required()))
        elif isinstance(inner, type) and issubclass(inner, BaseModel) and text_fields(inner):
            out.append((wire, "model", (field.is_required(), inner)))
        elif origin is list and isinstance(typing.get_args(inner)[0], type) and issubclass(typing.get_args(inner)[0], BaseModel):
            item = typing.get_args(inner)[0]
            if text_fields(item):
                out.append((wire, "models", (field.is_required(), item)))
    return out


def spec_text_bytes(spec: dict[str, Any], model: type[BaseModel]) -> int:
    """UTF-8 bytes of the free text in `spec` (wire form, camelCase), as the CRD's rule counts."""
    total = 0
    for wire, kind, detail in text_fields(model):
        value = spec.get(wire)
        if value is None:
            continue
        if kind == "str":
            total += len(str(value).encode("utf-8"))
        elif kind == "strs":
            total += sum(len(str(v).encode("utf-8")) for v in value)
        elif kind == "model":
            total += spec_text_bytes(value, detail[1])
        else:
            total += sum(spec_text_bytes(v, detail[1]) for v in value)
    return total


def _cel_sum(model: type[BaseModel], var: str) -> str:
    terms = []
    for wire, kind, detail in text_fields(model):
        ref = f"{var}.{wire}"
        required = detail if kind in ("str", "strs") else detail[0]
        if kind == "str":
            term = f"size(bytes({ref}))"
        elif kind == "strs":
            term = f"{ref}.map(t, size(bytes(t))).sum()"
        elif kind == "model":
            term = f"({_cel_sum(detail[1], ref)})"
        else:
            item = "s" if var != "s" else "s2"
            term = f"{ref}.map({item}, {_cel_sum(detail[1], item)}).sum()"
        terms.append(term if required else f"(has({ref}) ? {term} : 0)")
    return " + ".join(terms) or "0"


def spec_size_rule(model: type[BaseModel]) -> dict[str, str]:
    """The CRD validation rule (on `spec`) bounding its free text."""
    return {"rule": f"{_cel_sum(model, 'self')} <= {MAX_SPEC_TEXT_BYTES}", "message": SPEC_TOO_LARGE}

"""The CRD's CEL validation rules (`x-kubernetes-validations`) evaluated as the API server does, with
a real CEL implementation (cel-python) plus the one function of Kubernetes' CEL list library our
rules use (`sum()`). jsonschema checks the rest of the openAPIV3Schema; this checks the rules."""

from __future__ import annotations

from typing import Any, Iterator

import celpy
from celpy import celtypes


def _sum(values: Any) -> Any:
    """Kubernetes' `<list>.sum()` (k8s.io/apiserver/pkg/cel/library/lists.go)."""
    total = celtypes.IntType(0)
    for value in values:
        total = total + value
    return total


_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def _program(rule: str) -> Any:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _ENV.program(_ENV.compile(rule), functions={"sum": _sum})
    return _PROGRAMS[rule]


def rules(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[tuple[str, dict[str, str], Any]]:
    """(path, rule, value) for every rule of `schema` that applies to a node present in `value`."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule, value
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                yield from rules(sub, value[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in (schema.get("properties") or {}):
                    yield from rules(extra, item, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from rules(schema["items"], item, f"{path}[{i}]")


def cel_errors(schema: dict[str, Any], obj: Any) -> list[str]:
    """'path: message' for every rule that is false (or fails to evaluate) on `obj`."""
    found = []
    for path, rule, value in rules(schema, obj):
        result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if not isinstance(result, celtypes.BoolType) or not bool(result):
            found.append(f"{path.lstrip('.')}: {rule.get('message', rule['rule'])}")
    return found

"""Generate the VideoJob CustomResourceDefinition from the pydantic models.

Kubernetes wants a *structural* schema: every node typed, no `$ref`, no `anyOf` of types, no
`title`s. Pydantic's JSON Schema is close; `structural()` closes the gap. The result is
`crds/videojob.yaml`; a test regenerates it and fails when the two drift.
"""

from __future__ import annotations

from typing import Any

import yaml

from videojob.api.limits import spec_size_rule
from videojob.api.models import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VideoJobSpec,
    VideoJobStatus,
)

# Keys of JSON Schema that a CRD's openAPIV3Schema accepts and we want to keep.
_KEEP = {
    "type", "properties", "required", "items", "enum", "default", "description", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string", "additionalProperties", "x-kubernetes-validations",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    defs = defs if defs is not None else schema.get("$defs", {})
    node = dict(schema)
    if "$ref" in node:
        ref = node.pop("$ref").rsplit("/", 1)[-1]
        node = {**defs[ref], **node}
    if "anyOf" in node:
        # Optional[X] arrives as anyOf [X, null]: the CRD says "X, may be omitted".
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {variants}")
        node = {**structural(variants[0], defs), **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            # `false` (pydantic's extra="forbid") is not allowed in a structural schema; the API
            # server prunes unknown fields anyway, and the operator reports them by name.
            continue
        elif key == "default" and (isinstance(value, (dict, list)) or value is None):
            # Object and list defaults would be applied by the API server with snake_case keys
            # and for absent parents; the scalar defaults inside nested objects suffice.
            continue
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "type" not in out and ("properties" in out or "additionalProperties" in out):
        out["type"] = "object"
    return out


def _schema_of(model: type) -> dict[str, Any]:
    return structural(model.model_json_schema(by_alias=True, mode="validation"))


def openapi_schema() -> dict[str, Any]:
    spec = _schema_of(VideoJobSpec)
    spec["x-kubernetes-validations"] = [
        {
            "rule": "has(self.code) || has(self.storyboard) || has(self.prompt)",
            "message": "spec needs one content source: code, storyboard or prompt",
        },
        spec_size_rule(VideoJobSpec),
    ]
    status = _schema_of(VideoJobStatus)
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stage", "type": "string", "jsonPath": ".status.currentStage"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
    {"name": "Version", "type": "integer", "jsonPath": ".status.version"},
    {"name": "Video", "type": "string", "jsonPath": ".status.outputs.videoURI", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "videojob-operator"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["videogen"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `videojob crd` from operator/videojob/api/models.py. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)

"""The example VideoJobs are what users `kubectl apply` first: they must pass the CRD's schema as the
API server applies it (kubectl's default --validate=strict also refuses unknown fields)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.cel import cel_errors
from tests.deploy.conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The openAPIV3Schema with unknown fields refused where the API server would refuse them
    (objects with declared properties and no x-kubernetes-preserve-unknown-fields)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def validator(crd):
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema = strict(version["schema"]["openAPIV3Schema"])
    return CRDValidator(jsonschema.Draft7Validator(schema), version["schema"]["openAPIV3Schema"])


@dataclass
class CRDValidator:
    """The structural schema (jsonschema) and the CEL rules (tests/deploy/cel.py) of the CRD."""

    schema: jsonschema.Draft7Validator
    openapi: dict[str, Any]


def videojobs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "VideoJob"]


def errors(validator, obj) -> list[str]:
    """What the API server would say: the schema's errors, then (on a valid shape) its CEL rules."""
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.schema.iter_errors(obj)]
    return found or cel_errors(validator.openapi, obj)


def test_there_are_examples_to_apply():
    assert ROOT / "examples" / "hello.yaml" in EXAMPLES
    assert [p.name for p in EXAMPLES if not videojobs(p)] == [], "every example holds a VideoJob"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_videojobs_pass_the_crd_schema(validator, crd, path):
    for obj in videojobs(path):
        assert obj["apiVersion"] == f"{crd['spec']['group']}/v1alpha1"
        assert errors(validator, obj) == [], f"{path.name}: {obj['metadata']['name']}"


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda o: o["spec"].pop("topic"), "'topic' is a required property"),
        (lambda o: o["spec"].update(topic=""), "should be non-empty"),
        (lambda o: o["spec"].update(projectId="Demo_Project"), "does not match"),
        (lambda o: o["spec"]["render"].update(quality="4k"), "is not one of"),
        (lambda o: o["spec"].update(colour="red"), "Additional properties are not allowed ('colour'"),
        (lambda o: o["spec"]["storyboard"]["scenes"][0].update(durationSeconds=0), "less than the minimum"),
        (lambda o: o["spec"].pop("storyboard"), "content source"),
    ],
)
def test_the_schema_check_catches_broken_videojobs(validator, mutate, complaint):
    (hello,) = videojobs(ROOT / "examples" / "hello.yaml")
    broken = copy.deepcopy(hello)
    mutate(broken)
    assert any(complaint in e for e in errors(validator, broken)), errors(validator, broken)

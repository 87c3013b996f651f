"""The example VideoJobs are what users `kubectl apply` first: they must pass the CRD's schema as the
API server applies it (kubectl's default --validate=strict also refuses unknown fields)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CONTENT_RULE = "has(self.code) || has(self.storyboard) || has(self.prompt)"


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
    # Only this one CEL rule exists; it is checked in Python below since jsonschema has no CEL.
    assert [r["rule"] for r in schema["properties"]["spec"]["x-kubernetes-validations"]] == [CONTENT_RULE]
    return jsonschema.Draft7Validator(schema)


def videojobs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "VideoJob"]


def errors(validator, obj) -> list[str]:
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    spec = obj.get("spec", {})
    if not any(k in spec for k in ("code", "storyboard", "prompt")):
        found.append("spec needs one content source: code, storyboard or prompt")
    return found


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

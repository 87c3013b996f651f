"""What the API server enforces beyond the schema's shape: a spec small enough that Kopf's and kubectl's
copies fit in 256 KiB of annotations (refused with a clear message otherwise), quantities as numbers
or strings, conditions as a map keyed by type, and status messages capped (and cut to fit)."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from tests.deploy.cel import cel_errors
from tests.deploy.conftest import ROOT
from videojob.api.limits import ANNOTATIONS_LIMIT, MAX_SPEC_TEXT_BYTES, MAX_STATUS_MESSAGE, SPEC_TOO_LARGE, spec_text_bytes
from videojob.api.manifest import InvalidVideoJob, parse_videojob
from videojob.api.models import VideoJobSpec
from videojob.controller.main import OperatorOptions, kopf_settings
from videojob.pipeline.status import StatusTracker

JAPANESE = "フーリエ級数は周期関数を正弦と余弦の和で表す。"  # 3 UTF-8 bytes a character


@pytest.fixture(scope="module")
def openapi(crd):
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    return version["schema"]["openAPIV3Schema"]


def videojob(spec: dict) -> dict:
    return {"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
            "metadata": {"name": "big", "namespace": "team-a", "labels": {"app": "demo"}},
            "spec": {"topic": "Fourier", **spec}}


def storyboard(scenes: int, text: str) -> dict:
    return {"storyboard": {"scenes": [{"title": f"{i}: {text[:40]}", "text": text, "bullets": [text[:100]] * 3}
                                      for i in range(scenes)]}}


def fill(unit: str, utf8_bytes: int) -> str:
    return unit * (utf8_bytes // len(unit.encode()))


def annotations_size(obj: dict) -> int:
    """Bytes of the annotations after `kubectl apply` (last-applied, Go JSON: UTF-8, <>& escaped)
    and Kopf's handling (the operator's own diff-base storage writing last-handled-configuration)."""
    import kopf

    applied = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    applied = applied.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
    body = copy.deepcopy(obj)
    body["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": applied}
    storage = kopf_settings(OperatorOptions(namespaces=[])).persistence.diffbase_storage
    patch = kopf.Patch()
    storage.store(body=kopf.Body(body), patch=patch, essence=storage.build(body=kopf.Body(body)))
    annotations = {**body["metadata"]["annotations"], **patch["metadata"]["annotations"]}
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items() if v is not None)


def test_a_japanese_twenty_scene_storyboard_is_refused_by_the_crd_with_the_reason(openapi):
    too_big = videojob(storyboard(20, fill(JAPANESE, 1950 * 3)))
    jsonschema.validate(too_big, openapi)  # every field on its own is within its limits
    assert annotations_size(too_big) > ANNOTATIONS_LIMIT  # ... yet Kopf could never store it
    assert cel_errors(openapi, too_big) == ["spec: " + SPEC_TOO_LARGE]
    assert "256 KiB" in SPEC_TOO_LARGE and str(MAX_SPEC_TEXT_BYTES) in SPEC_TOO_LARGE


def test_the_operator_and_videojob_run_refuse_it_the_same_way():
    too_big = videojob(storyboard(20, fill(JAPANESE, 1950 * 3)))
    with pytest.raises(InvalidVideoJob) as err:
        parse_videojob(too_big)
    assert any(SPEC_TOO_LARGE in p for p in err.value.problems)


@pytest.mark.parametrize("unit", ["x = 1\n", "é", JAPANESE, "😀", 'print("a")\n'], ids=["ascii", "latin", "cjk", "emoji", "quotes"])
def test_the_largest_spec_admitted_fits_in_the_annotations_in_every_script(openapi, unit):
    # A full storyboard, and code taking the rest of what the rule admits, in each kind of text.
    spec = storyboard(20, fill(unit, 400))
    left = MAX_SPEC_TEXT_BYTES - spec_text_bytes(videojob(spec)["spec"], VideoJobSpec)
    spec["code"] = fill(unit, left)
    assert cel_errors(openapi, videojob(spec)) == []  # admitted ...
    assert annotations_size(videojob(spec)) <= ANNOTATIONS_LIMIT  # ... and it fits
    spec["code"] += unit
    assert cel_errors(openapi, videojob(spec)) == ["spec: " + SPEC_TOO_LARGE]  # one more unit is refused


def test_ordinary_specs_and_long_ascii_code_are_admitted(openapi):
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "VideoJob":
                assert cel_errors(openapi, doc) == [], path.name
    code = "from manim import *\n" + "class S(Scene):\n    def construct(self):\n" + "        self.wait(0.1)\n" * 2000
    assert 40_000 < len(code) < MAX_SPEC_TEXT_BYTES
    assert cel_errors(openapi, videojob({"code": code})) == []


@pytest.mark.parametrize("cpu", [0.5, 2, "500m", "1.5"])
def test_quantities_may_be_numbers_or_strings(openapi, cpu):
    obj = videojob({"prompt": "x", "podTemplate": {"resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}})
    jsonschema.validate(obj, openapi)
    assert cel_errors(openapi, obj) == []


def test_a_quantity_that_is_not_a_scalar_is_refused(openapi):
    obj = videojob({"prompt": "x", "podTemplate": {"resources": {"limits": {"cpu": {"cores": 2}}}}})
    assert cel_errors(openapi, obj) == ["spec.podTemplate.resources.limits.cpu: a quantity: a number (2, 0.5) or a string (500m, 2Gi)"]


def test_conditions_are_a_map_keyed_by_type(openapi):
    conditions = openapi["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]  # a map key must be required


def test_status_messages_are_capped_and_the_writer_cuts_them_to_fit(openapi):
    status_schema = openapi["properties"]["status"]
    assert status_schema["properties"]["message"]["maxLength"] == MAX_STATUS_MESSAGE
    assert status_schema["properties"]["conditions"]["items"]["properties"]["message"]["maxLength"] == MAX_STATUS_MESSAGE
    tracker = StatusTracker(1)
    tracker.started()
    long_error = "Traceback: " + "x" * 20_000 + " ValueError: the real reason"
    tracker.failed("RenderFailed", long_error, stalled=True)
    status = tracker.as_dict()
    jsonschema.validate(status, status_schema)
    assert len(status["message"]) <= MAX_STATUS_MESSAGE
    assert status["message"].startswith("Traceback") and status["message"].endswith("the real reason")
    assert all(len(c["message"]) <= MAX_STATUS_MESSAGE for c in status["conditions"])

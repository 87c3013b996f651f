"""docs/deployment.md stays true to the chart: every value documented with its real default, and
the commands a platform team copies from it are there."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.deploy.conftest import CHART, ROOT

DOCS = ROOT / "docs" / "deployment.md"
# Values documented as a whole rather than key by key.
OPAQUE = {"podSecurityContext", "securityContext", "resources", "podDefaults", "labels", "annotations",
          "affinity", "nodeSelector", "podAnnotations", "podLabels"}


def leaf_values(node: dict, prefix: str = ""):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and key not in OPAQUE:
            yield from leaf_values(value, path)
        else:
            yield path, value


@pytest.fixture(scope="module")
def docs() -> str:
    return DOCS.read_text()


@pytest.fixture(scope="module")
def values_table(docs) -> dict[str, str]:
    """{documented key: default column} from the table under '## Values'."""
    section = docs.split("## Values", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([^`]+)`", cells[0]):
                rows[key] = cells[1]
    return rows


def documented(path: str, rows: dict[str, str]) -> str | None:
    """The default column of `path`, also for grouped rows like `image.repository`, `.tag`."""
    if path in rows:
        return rows[path]
    parent, _, leaf = path.rpartition(".")
    for key, default in rows.items():
        if key == f".{leaf}" and any(k.startswith(parent + ".") for k in rows):
            return default
        if key.endswith(".*") and path.startswith(key[:-1]):
            return default
    return None


def test_every_chart_value_is_in_the_values_table(values_table):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [path for path, _ in leaf_values(values) if documented(path, values_table) is None]
    assert missing == []


def test_documented_defaults_match_values_yaml(values_table):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path, default in leaf_values(values):
        column = documented(path, values_table)
        if isinstance(default, (bool, int, str)) and not isinstance(default, bool) and default != "":
            assert str(default) in column, (path, default, column)
        if isinstance(default, bool) and path in values_table:
            assert json.dumps(default) in column, (path, default, column)


def test_documented_env_names_are_the_ones_the_chart_sets(docs, render):
    env = render(set_=["aws.videoBucket=bucket-a", "aws.codeBucket=bucket-b", "aws.region=eu-west-1",
                       "aws.kmsKeyId=k", "aws.maxRetries=2", "aws.chunkSize=8MiB", "aws.multipartThreshold=8MiB",
                       "aws.maxConcurrentUploads=2", "aws.retryMode=standard", "aws.endpointUrl=http://x",
                       "operator.llmModel=openai:gpt-4o-mini"]).env()
    for name in env:
        assert f"`{name}`" in docs, name


def test_docs_carry_the_commands_platform_teams_copy(docs):
    for snippet in (
        "kubectl wait --for=condition=Succeeded vj/",
        """kubectl patch vj NAME --type=merge -p '{"metadata":{"finalizers":null}}'""",
        "resource.customizations.health.videogen.io_VideoJob",
        "kubectl apply --server-side -f helm/videojob-operator/crds/videojob.yaml",
        "helm uninstall",
        "eks.amazonaws.com/role-arn",
        "healthCheckExprs",
        "deploy/iam-policy.json",
    ):
        assert snippet in docs, snippet
    for problem in ("Credentials not found", "Access Denied", "table not found", "timeouts", "Stuck finalizer"):
        assert problem in docs, problem


def test_flux_snippet_is_a_valid_kustomization(docs):
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", docs, re.S) if "kind: Kustomization" in b]
    kustomization = yaml.safe_load(block)
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert kustomization["spec"]["wait"] is True
    (check,) = kustomization["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == ("videogen.io/v1alpha1", "VideoJob")
    assert "'Succeeded'" in check["current"] and "'True'" in check["current"]
    assert "'Stalled'" in check["failed"] and "observedGeneration" in check["inProgress"]

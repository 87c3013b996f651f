"""The examples, applied with a real kubectl, as a user would (README)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.kubebin import kube_binaries

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Examples that need no LLM or cloud: the operator renders them here.
OFFLINE = ["hello.yaml", "code.yaml"]


@pytest.fixture()
def kubectl(apiserver):
    binary = kube_binaries()[0]
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "HOME": str(apiserver.kubeconfig.parent)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=180)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    return run


def test_examples_apply_and_the_offline_ones_succeed(operator, kube, apiserver, kubectl):
    operator()  # watches "default" only
    # The examples publish into project "demo", granted to the namespace as README says (the
    # emulated API server cannot take `kubectl annotate namespace`: set it as an admin would).
    apiserver.call(lambda server: server.objects[("v1/namespaces", None, "default")].patch(
        {"metadata": {"annotations": {"videogen.io/projects": "demo"}}}))
    for example in OFFLINE:
        kubectl("apply", "--validate=false", "-f", str(EXAMPLES / example))
    # The ones that need an LLM are applied where no operator watches (no calls leave this host).
    apiserver.call(lambda server: server.objects.__setitem__(
        ("v1/namespaces", None, "llm"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm"}}))
    for example in sorted(EXAMPLES.glob("*.yaml")):
        if example.name not in OFFLINE:
            kubectl("apply", "--validate=false", "-n", "llm", "-f", str(example))

    for name in ("hello", "circle-to-square"):
        wait = kubectl("wait", "--for=condition=Succeeded", f"vj/{name}", "--timeout=150s")
        assert "condition met" in wait.stdout
        status = kube.status(name)
        assert status["phase"] == "Succeeded" and status["version"] == 1
    names = kubectl("get", "videojobs", "-n", "llm", "-o", "name").stdout.split()
    assert names == ["videojob.videogen.io/fourier"]

    kubectl("delete", "vj", "hello", "--wait=true", "--timeout=60s")
    assert not kube.exists("hello")

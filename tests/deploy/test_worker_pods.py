"""The worker pods the chart's operator creates, and what surrounds them: the Job built from the
chart's own environment (render container without token or credentials, RuntimeClass), the worker
NetworkPolicy, and the worker identity in every namespace VideoJobs may use."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from tests.deploy.conftest import FULL_VALUES, NAMESPACE
from videojob.config import Settings
from videojob.controller.jobspec import build_job
from videojob.controller.worker_identity import worker_identity

VIDEOJOB = {"metadata": {"name": "fourier", "namespace": "team-a", "generation": 1, "uid": "u-1"},
            "spec": {"topic": "Fourier"}}


def settings_from(rendered, monkeypatch) -> Settings:
    for name, value in rendered.env().items():
        monkeypatch.setenv(name, value)
    from videojob.config import load_settings

    return load_settings()


def job_from(rendered, monkeypatch) -> dict:
    return build_job(VIDEOJOB, 1, settings_from(rendered, monkeypatch), environ=rendered.env())


def containers(job) -> dict[str, dict]:
    pod = job["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


@pytest.fixture(scope="module")
def full(render):
    return render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"])


def test_the_render_container_holds_no_token_and_no_aws_settings(full, monkeypatch):
    job = job_from(full, monkeypatch)
    pod = job["spec"]["template"]["spec"]
    render, worker = containers(job)["render"], containers(job)["worker"]
    assert pod["automountServiceAccountToken"] is False
    assert not [m for m in render["volumeMounts"] if "serviceaccount" in m["mountPath"]]
    assert [m["mountPath"] for m in worker["volumeMounts"] if "serviceaccount" in m["mountPath"]] == [
        "/var/run/secrets/kubernetes.io/serviceaccount"]
    assert not [e for e in render["env"] if e["name"].startswith(("AWS_", "VIDEOJOB_"))]
    assert {e["name"]: e["value"] for e in worker["env"]}["AWS_S3_VIDEO_BUCKET"] == "acme-videojob-videos"
    assert job["spec"]["template"]["metadata"]["annotations"]["eks.amazonaws.com/skip-containers"] == "render"
    kubernetes_validate.validate(job, kubernetes_validate.utils.latest_version() + ".0", strict=True)


def test_runtime_class_reaches_worker_pods(render, monkeypatch):
    rendered = render(set_=["render.runtimeClassName=gvisor"])
    assert rendered.env()["VIDEOJOB_JOB_RUNTIME_CLASS_NAME"] == "gvisor"
    assert job_from(rendered, monkeypatch)["spec"]["template"]["spec"]["runtimeClassName"] == "gvisor"
    assert "VIDEOJOB_JOB_RUNTIME_CLASS_NAME" not in render().env()


def test_worker_pods_get_default_resources_from_the_render_settings(render, monkeypatch):
    rendered = render(set_=["operator.renderMemoryMB=2048", "operator.sceneParallelism=3"])
    resources = containers(job_from(rendered, monkeypatch))["render"]["resources"]
    assert resources == {"requests": {"cpu": "3", "memory": "2048Mi"}, "limits": {"memory": f"{2048 * 3 + 512}Mi"}}


# ---------------------------------------------------------------------------------- NetworkPolicy


def egress_by_port(policy) -> dict[int, list]:
    """{port: peers allowed on it} (TCP; DNS also on UDP)."""
    out: dict[int, list] = {}
    for rule in policy["spec"]["egress"]:
        for port in rule.get("ports", []):
            if port["protocol"] == "TCP":
                out.setdefault(port["port"], []).extend(rule["to"])
    return out


def test_networkpolicy_denies_ingress_and_allows_only_dns_api_server_and_endpoints(render, monkeypatch):
    rendered = render(set_=["networkPolicy.apiServer.cidrs={10.0.0.10/32,10.0.0.11/32}",
                            "networkPolicy.endpointCIDRs={10.20.0.0/24}"])
    policy = rendered.one("NetworkPolicy", "videojob-operator-worker", NAMESPACE)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec  # no ingress at all
    # It selects exactly the pods of worker Jobs.
    pod_labels = job_from(rendered, monkeypatch)["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    by_port = egress_by_port(policy)
    assert sorted(by_port) == [53, 443, 6443]
    (dns,) = [r for r in spec["egress"] if {"protocol": "UDP", "port": 53} in r["ports"]]
    assert {"protocol": "TCP", "port": 53} in dns["ports"]
    assert by_port[53] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert [t["ipBlock"]["cidr"] for t in by_port[6443]] == ["10.0.0.10/32", "10.0.0.11/32"]
    assert sorted(t["ipBlock"]["cidr"] for t in by_port[443]) == ["10.0.0.10/32", "10.0.0.11/32", "10.20.0.0/24"]
    # Instance metadata and everything else stay unreachable.
    assert "169.254.169.254/32" not in json.dumps(spec) and "0.0.0.0/0" not in json.dumps(spec)


def test_networkpolicy_without_known_api_server_falls_back_to_the_api_ports_only(render):
    spec = render().one("NetworkPolicy")["spec"]
    assert {rule["to"][0].get("ipBlock", {}).get("cidr") for rule in spec["egress"]} == {None, "0.0.0.0/0"}
    assert sorted(egress_by_port({"spec": spec})) == [53, 443, 6443]


def test_networkpolicy_extra_egress_and_switch(render, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(json.dumps({"networkPolicy": {"extraEgress": [
        {"to": [{"podSelector": {"matchLabels": {"app": "minio"}}}], "ports": [{"protocol": "TCP", "port": 9000}]}]}}))
    spec = render(values).one("NetworkPolicy")["spec"]
    assert spec["egress"][-1]["ports"] == [{"protocol": "TCP", "port": 9000}]
    assert not render(set_=["networkPolicy.enabled=false"]).all("NetworkPolicy")
    assert not render(set_=["operator.executor=inline"]).all("NetworkPolicy")


# ------------------------------------------------------------------------------- worker identity


def test_named_namespaces_each_get_worker_account_binding_and_policy(full):
    for ns in ("videos", "videos-staging"):
        sa = full.one("ServiceAccount", "videojob-worker", ns)
        assert sa["automountServiceAccountToken"] is False
        binding = full.one("RoleBinding", "videojob-operator-worker", ns)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-worker", "namespace": ns}]
        assert full.one("NetworkPolicy", "videojob-operator-worker", ns)
    # The chart made them: the operator is not asked to.
    assert "VIDEOJOB_WORKER_CLUSTER_ROLE" not in full.env()


def test_all_namespaces_mode_the_operator_makes_the_same_identity_in_any_namespace(render, monkeypatch):
    rendered = render(set_=["worker.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/w"])
    settings = settings_from(rendered, monkeypatch)
    made = {obj["kind"]: obj for obj in worker_identity("team-z", settings)}
    assert sorted(made) == ["NetworkPolicy", "RoleBinding", "ServiceAccount"]
    # What the operator creates in team-z matches what the chart created in its own namespace.
    chart_sa = rendered.one("ServiceAccount", "videojob-worker", NAMESPACE)
    assert made["ServiceAccount"]["metadata"]["name"] == chart_sa["metadata"]["name"]
    assert made["ServiceAccount"]["metadata"]["annotations"] == chart_sa["metadata"]["annotations"]
    assert made["ServiceAccount"]["automountServiceAccountToken"] is False
    chart_binding = rendered.one("RoleBinding", "videojob-operator-worker", NAMESPACE)
    assert made["RoleBinding"]["roleRef"] == chart_binding["roleRef"]
    assert made["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-worker", "namespace": "team-z"}]
    assert made["NetworkPolicy"]["spec"] == rendered.one("NetworkPolicy", namespace=NAMESPACE)["spec"]
    assert made["NetworkPolicy"]["metadata"]["namespace"] == "team-z"
    assert made["NetworkPolicy"]["metadata"]["name"] == rendered.one("NetworkPolicy", namespace=NAMESPACE)["metadata"]["name"]
    # ... and its ClusterRole may bind exactly that role.
    (bind,) = [r for r in rendered.one("ClusterRole", "videojob-operator")["rules"] if r["verbs"] == ["bind"]]
    assert bind["resourceNames"] == [made["RoleBinding"]["roleRef"]["name"]]
    for obj in made.values():
        kubernetes_validate.validate(obj, kubernetes_validate.utils.latest_version() + ".0", strict=True)


def test_self_managed_identity_takes_no_rights_and_nothing_is_made(render, monkeypatch):
    rendered = render(set_=["worker.serviceAccount.operatorManaged=false"])
    assert "VIDEOJOB_WORKER_CLUSTER_ROLE" not in rendered.env()
    rules = [r["resources"] for r in rendered.one("ClusterRole", "videojob-operator")["rules"]]
    assert ["serviceaccounts"] not in rules and ["clusterroles"] not in rules
    assert worker_identity("team-z", settings_from(rendered, monkeypatch)) == []

"""The worker identity wherever VideoJobs are allowed: with the chart's defaults (all namespaces, Job
executor) the operator makes the worker ServiceAccount, its RoleBinding and the worker
NetworkPolicy in a VideoJob's namespace before the Job, once per namespace, and again if the
ServiceAccount disappears. The emulated Job controller refuses pods whose ServiceAccount does not
exist (a FailedCreate Event), as Kubernetes does."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.rest import ApiException

from tests.controller.conftest import NAMESPACE
from tests.deploy.conftest import helm, render  # noqa: F401  (fixtures: the chart's own settings)
from tests.helpers import wait_until
from tests.jobexec.conftest import spec
from videojob.controller.job_identity import SET_ANNOTATIONS, drift

TEAM = "team-a"
ROLE_ARN = "arn:aws:iam::111122223333:role/videojob-worker"
IDENTITY = (("serviceaccounts", "ServiceAccount"), ("rolebindings", "RoleBinding"), ("networkpolicies", "NetworkPolicy"))


@pytest.fixture()
def chart(render, monkeypatch):  # noqa: F811
    """The chart's defaults (plus an IRSA role), as the operator's environment."""
    rendered = render(set_=[f"worker.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn={ROLE_ARN}"])
    env = rendered.env()
    assert "--all-namespaces" in rendered.container()["args"] and env["VIDEOJOB_EXECUTOR"] == "job"
    for name, value in env.items():
        # The Lease is another test's business; the workdir is the test's.
        if name.startswith("VIDEOJOB_") and name not in ("VIDEOJOB_WORKDIR", "VIDEOJOB_LEADER_ELECTION"):
            monkeypatch.setenv(name, value)
    return rendered


@pytest.fixture()
def team(apiserver):
    """A namespace nobody prepared for worker pods."""
    apiserver.call(lambda server: server.objects.__setitem__(
        ("v1/namespaces", None, TEAM), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}))
    return TEAM


def identity_requests(apiserver, verb: str) -> dict[str, int]:
    counts = apiserver.call(lambda server: dict(server.requests_by_agent))
    return {plural: sum(n for (_, v, p, _), n in counts.items() if v == verb and p == plural) for plural, _ in IDENTITY}


def failed_creates(jobs, job: str) -> list[str]:
    events = jobs.core.list_namespaced_event(TEAM).items
    return [e.message for e in events if e.reason == "FailedCreate" and e.involved_object.name == job]


def run_to_success(kube, jobs, name: str) -> None:
    """Play the kubelet and the Job controller for a pod that could be created."""
    job = f"{name}-g1-a1"
    jobs.wait_for(job, namespace=TEAM)
    jobs.pod(job, {"phase": "Running"}, namespace=TEAM)
    jobs.finish(job, "Complete", namespace=TEAM)
    ended = kube.wait(name, lambda o: (o.get("status") or {}).get("phase") in ("Succeeded", "Failed"), namespace=TEAM)
    assert ended["status"]["phase"] == "Succeeded", ended["status"].get("message")


def test_a_videojob_in_an_unprepared_namespace_gets_the_worker_identity_once(operator, kube, jobs, apiserver, chart, team):
    operator(namespaces=[])
    kube.create("first", spec(), namespace=TEAM)
    jobs.wait_for("first-g1-a1", namespace=TEAM)
    # The identity existed before the Job: the Job controller created its pod without a refusal.
    assert failed_creates(jobs, "first-g1-a1") == []
    run_to_success(kube, jobs, "first")

    sa = jobs.core.read_namespaced_service_account("videojob-worker", TEAM).to_dict()
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN
    assert sa["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "videojob-operator"
    assert sa["automount_service_account_token"] is False
    binding = apiserver.call(lambda server: dict(server.objects[
        "rbac.authorization.k8s.io/v1/rolebindings", TEAM, "videojob-operator-worker"].raw))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "videojob-operator-worker"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-worker", "namespace": TEAM}]
    policy = apiserver.call(lambda server: dict(server.objects[
        "networking.k8s.io/v1/networkpolicies", TEAM, "videojob-operator-worker"].raw))
    assert policy["spec"] == chart.one("NetworkPolicy", namespace="videojob-system")["spec"]  # the chart's own
    assert identity_requests(apiserver, "POST") == {"serviceaccounts": 1, "rolebindings": 1, "networkpolicies": 1}

    # A second VideoJob there: not one more request about the identity.
    reads = identity_requests(apiserver, "GET")
    kube.create("second", spec(), namespace=TEAM)
    run_to_success(kube, jobs, "second")
    assert failed_creates(jobs, "second-g1-a1") == []
    assert identity_requests(apiserver, "POST") == {"serviceaccounts": 1, "rolebindings": 1, "networkpolicies": 1}
    assert identity_requests(apiserver, "GET") == reads


def test_a_deleted_worker_account_is_made_again_when_its_pod_is_refused(operator, kube, jobs, apiserver, chart, team):
    operator(namespaces=[], job_pod_start_timeout_seconds=30)
    kube.create("first", spec(), namespace=TEAM)
    run_to_success(kube, jobs, "first")
    jobs.core.delete_namespaced_service_account("videojob-worker", TEAM)  # someone cleans up

    kube.create("second", spec(), namespace=TEAM)
    jobs.wait_for("second-g1-a1", namespace=TEAM)
    assert failed_creates(jobs, "second-g1-a1")  # the operator thought the namespace was ready

    def account_back() -> bool:
        try:
            jobs.core.read_namespaced_service_account("videojob-worker", TEAM)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    wait_until(account_back, 30, "the worker ServiceAccount made again")
    run_to_success(kube, jobs, "second")  # the Job controller's retry creates the pod
    assert identity_requests(apiserver, "POST")["serviceaccounts"] == 2


def test_in_a_named_namespace_the_operator_leaves_the_identity_to_the_chart(operator, kube, jobs, apiserver):
    """Named namespaces: the chart made the identity there (`apiserver` adds the account)."""
    operator(executor="job")
    kube.create("here", spec())
    jobs.wait_for("here-g1-a1", namespace=NAMESPACE)
    assert sum(identity_requests(apiserver, "POST").values()) == sum(identity_requests(apiserver, "GET").values()) == 0


def test_drift_repairs_only_what_the_operator_set():
    wanted = {"kind": "ServiceAccount", "metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:new"}}}
    current = {"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:old", "team": "keep",
                                            "old.example/key": "gone", SET_ANNOTATIONS: '["old.example/key"]'}}}
    assert drift(wanted, current) == {"metadata": {"annotations": {
        "eks.amazonaws.com/role-arn": "arn:new", "old.example/key": None,
        SET_ANNOTATIONS: json.dumps(["eks.amazonaws.com/role-arn"])}}}
    settled = {"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "arn:new", "team": "keep",
                                            SET_ANNOTATIONS: json.dumps(["eks.amazonaws.com/role-arn"])}}}
    assert drift(wanted, settled) is None

    policy = {"kind": "NetworkPolicy", "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    assert drift(policy, {"spec": dict(policy["spec"])}) is None
    loosened = {"spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}}
    assert drift(policy, loosened) == {"spec": {"ingress": None, **policy["spec"]}}

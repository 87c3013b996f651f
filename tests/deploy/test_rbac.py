"""Least privilege, derived from the code: the chart grants exactly the verbs the operator and the
worker call (their Kubernetes client calls, found in the source) plus what Kopf itself does, and
nothing else; in job mode the operator holds no Secret right anywhere."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tests.deploy.conftest import FULL_VALUES, NAMESPACE
from tests.deploy.test_chart import rules_of
from videojob.config import Settings
from videojob.controller import job_executor, kube
from videojob.controller.worker_identity import worker_identity

CONTROLLER = Path(kube.__file__).parent

# The client calls behind each wrapper method (checked against the source below).
WRAPPERS = {
    "patch_status": ("videogen.io", "videojobs/status", "patch"),
    "patch_metadata": ("videogen.io", "videojobs", "patch"),
    "create_event": ("", "events", "create"),
    "read_secret": ("", "secrets", "get"),
    "create_job": ("batch", "jobs", "create"),
    "read_job": ("batch", "jobs", "get"),
    "set_suspend": ("batch", "jobs", "patch"),
    "delete_job": ("batch", "jobs", "delete"),
    "job_pods": ("", "pods", "list"),
    "read_videojob": ("videogen.io", "videojobs", "get"),
}
API_CALL = re.compile(r"\b(create|read|get|list|patch|delete|replace)_namespaced_(custom_object_status|custom_object|job|pod|event|secret)\b")
VERB = {"create": "create", "read": "get", "get": "get", "list": "list", "patch": "patch", "delete": "delete", "replace": "update"}
RESOURCE = {"custom_object_status": ("videogen.io", "videojobs/status"), "custom_object": ("videogen.io", "videojobs"),
            "job": ("batch", "jobs"), "pod": ("", "pods"), "event": ("", "events"), "secret": ("", "secrets")}

# What Kopf does by itself: watch what handlers are registered for (VideoJobs; with the Job
# executor its Jobs and pods), patch VideoJobs (finalizer, progress annotations), post Events;
# watching all namespaces, discover CRDs.
KOPF = {("videogen.io", "videojobs"): {"list", "watch", "patch"}, ("", "events"): {"create"}}
KOPF_JOB_MODE = {("batch", "jobs"): {"list", "watch"}, ("", "pods"): {"list", "watch"}}
KOPF_DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}

# Modules by who runs them: the worker only in Job pods, jobrun only with the inline executor.
WORKER_MODULES = {"worker.py", "events.py", "status_writer.py"}
INLINE_MODULES = {"jobrun.py"}


def merge(*needs: dict) -> dict:
    out: dict = {}
    for need in needs:
        for key, verbs in need.items():
            out.setdefault(key, set()).update(verbs)
    return out


def needs_of(modules: set[str]) -> dict:
    """{(group, resource): verbs} the given controller modules call, through the wrappers."""
    out: dict = {}
    for module in modules:
        source = (CONTROLLER / module).read_text()
        for wrapper, (group, resource, verb) in WRAPPERS.items():
            if re.search(rf"\.{wrapper}\(", source):
                out.setdefault((group, resource), set()).add(verb)
    return out


def test_every_client_call_goes_through_a_known_wrapper():
    """So nothing escapes the derivation: each API call in the controller is one of the wrappers'."""
    found = set()
    for path in CONTROLLER.glob("*.py"):
        for verb, kind in API_CALL.findall(path.read_text()):
            found.add((*RESOURCE[kind], VERB[verb]))
    assert found == set(WRAPPERS.values())
    for name, (group, resource, verb) in WRAPPERS.items():
        owner = getattr(kube.KubeClient, name, None) or getattr(job_executor.JobsClient, name)
        source = inspect.getsource(owner)
        kind = {v: k for k, v in RESOURCE.items()}[(group, resource)]
        verbs = [k for k, v in VERB.items() if v == verb]
        assert any(f"{v}_namespaced_{kind}" in source for v in verbs) or (
            "self._patch(" in source and f"status_subresource={resource.endswith('/status')}" in source), name


@pytest.fixture(scope="module")
def code_needs() -> dict[str, dict]:
    everything = {p.name for p in CONTROLLER.glob("*.py")}
    operator = everything - WORKER_MODULES - INLINE_MODULES | {"events.py", "status_writer.py"}
    return {
        "operator": needs_of(operator),
        "inline": needs_of(INLINE_MODULES),
        "worker": needs_of({"worker.py"}) | needs_of({"events.py", "status_writer.py"}),
    }


def identity_needs() -> dict:
    """The rights `worker_identity()` objects take: read, create, and patch to repair (SA, policy)."""
    settings = Settings(worker_cluster_role="videojob-operator-worker", worker_network_policy='{"podSelector": {}}')
    resources = {"ServiceAccount": ("", "serviceaccounts"), "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
                 "NetworkPolicy": ("networking.k8s.io", "networkpolicies")}
    out = {}
    for obj in worker_identity("team-a", settings):
        out[resources[obj["kind"]]] = {"get", "create"} | ({"patch"} if obj["kind"] != "RoleBinding" else set())
    out[("rbac.authorization.k8s.io", "clusterroles")] = {"bind"}
    return out


def test_job_mode_operator_clusterrole_is_exactly_what_the_code_and_kopf_use(render, code_needs):
    role = rules_of(render().one("ClusterRole", "videojob-operator"))
    expected = merge(code_needs["operator"], KOPF, KOPF_JOB_MODE, KOPF_DISCOVERY, identity_needs())
    assert role == expected
    assert ("", "secrets") not in role  # never a Secret, in any namespace


def test_inline_mode_operator_gets_secrets_because_it_reads_them_itself(render, code_needs):
    role = rules_of(render(set_=["operator.executor=inline"]).one("ClusterRole", "videojob-operator"))
    expected = merge(code_needs["operator"], code_needs["inline"], KOPF, KOPF_DISCOVERY)
    for job_only in (("batch", "jobs"), ("", "pods")):
        expected.pop(job_only)
    assert role == expected
    assert role[("", "secrets")] == {"get"}


def test_named_namespace_roles_grant_the_same_without_cluster_scope(render, code_needs):
    rendered = render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"])
    for ns in ("videos", "videos-staging"):
        role = rules_of(rendered.one("Role", "videojob-operator", ns))
        assert role == merge(code_needs["operator"], KOPF, KOPF_JOB_MODE)
    assert not rendered.all("ClusterRoleBinding")


def test_worker_role_is_exactly_what_the_worker_calls(render, code_needs):
    role = rules_of(render().one("ClusterRole", "videojob-operator-worker"))
    assert role == code_needs["worker"]
    assert role[("", "secrets")] == {"get"} and role[("videogen.io", "videojobs/status")] == {"patch"}


def test_leader_election_may_touch_leases_in_the_release_namespace_only(render):
    rendered = render()
    role = rendered.one("Role", "videojob-operator-leader-election", NAMESPACE)
    assert rules_of(role) == {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
    binding = rendered.one("RoleBinding", "videojob-operator-leader-election", NAMESPACE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-operator", "namespace": NAMESPACE}]
    for cluster_role in rendered.all("ClusterRole"):
        assert ("coordination.k8s.io", "leases") not in rules_of(cluster_role)
    env = rendered.env()
    assert (env["VIDEOJOB_LEADER_ELECTION"], env["VIDEOJOB_LEASE_NAME"], env["VIDEOJOB_LEASE_NAMESPACE"]) == (
        "true", "videojob-operator", NAMESPACE)


def test_more_replicas_roll_and_need_leader_election(render):
    deployment = render(set_=["replicaCount=2"]).one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    from tests.deploy.conftest import HelmError

    with pytest.raises(HelmError, match="leaderElection"):
        render(set_=["replicaCount=2", "leaderElection.enabled=false"])
    single = render(set_=["leaderElection.enabled=false"])
    assert not single.all("Role") and "VIDEOJOB_LEADER_ELECTION" not in single.env()

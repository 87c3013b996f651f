"""Least privilege, derived from the code: the chart grants exactly the verbs the operator and the
worker call (their Kubernetes client calls, found in the source) plus what Kopf itself does, and
nothing else; in job mode the operator holds no Secret right anywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.deploy.conftest import FULL_VALUES, NAMESPACE
from tests.deploy.test_chart import rules_of
from videojob.config import Settings
from videojob.controller import kube
from videojob.controller.worker_identity import worker_identity

CONTROLLER = Path(kube.__file__).parent

API_CALL = re.compile(r"\b(create|read|get|list|patch|delete|replace)_namespaced_"
                      r"(custom_object_status|custom_object|job|pod|event|secret|lease|service_account|role_binding|network_policy)\b")
VERB = {"create": "create", "read": "get", "get": "get", "list": "list", "patch": "patch", "delete": "delete", "replace": "update"}
RESOURCE = {"custom_object_status": ("videogen.io", "videojobs/status"), "custom_object": ("videogen.io", "videojobs"),
            "job": ("batch", "jobs"), "pod": ("", "pods"), "event": ("", "events"), "secret": ("", "secrets"),
            "lease": ("coordination.k8s.io", "leases"), "service_account": ("", "serviceaccounts"),
            "role_binding": ("rbac.authorization.k8s.io", "rolebindings"),
            "network_policy": ("networking.k8s.io", "networkpolicies")}
STATUS_PATCH = re.compile(r"_patch\([^)]*status_subresource=(True|False)")
IMPORT = re.compile(r"from videojob\.controller(?:\.(\w+))? import (\([^)]*\)|[\w, ]+)")

# What Kopf does by itself: watch what handlers are registered for (VideoJobs; with the Job
# executor its Jobs and pods), patch VideoJobs (finalizer, progress annotations), post Events;
# watching all namespaces, discover CRDs.
KOPF = {("videogen.io", "videojobs"): {"list", "watch", "patch"}, ("", "events"): {"create"}}
KOPF_JOB_MODE = {("batch", "jobs"): {"list", "watch"}, ("", "pods"): {"list", "watch"}}
KOPF_DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}
LEASES = ("coordination.k8s.io", "leases")


def merge(*needs: dict) -> dict:
    out: dict = {}
    for need in needs:
        for key, verbs in need.items():
            out.setdefault(key, set()).update(verbs)
    return out


def functions() -> dict[str, tuple[str, str]]:
    """{function name: (module, source)} of every function in the controller package."""
    out = {}
    for path in sorted(CONTROLLER.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, (path.name, ast.get_source_segment(path.read_text(), node) or ""))
    return out


def calls_in(source: str) -> set[tuple[str, str, str]]:
    return {(*RESOURCE[kind], VERB[verb]) for verb, kind in API_CALL.findall(source)}


def wrappers() -> dict[str, set[tuple[str, str, str]]]:
    """Functions that call the API, with what they call (resolving `_patch(status_subresource=)`)."""
    found = {}
    for name, (_, source) in functions().items():
        body = source.split("\n", 1)[-1]
        status = STATUS_PATCH.search(body)
        if status:
            resource = "videojobs/status" if status.group(1) == "True" else "videojobs"
            found[name] = {("videogen.io", resource, "patch")}
        elif calls_in(body) and name != "_patch":
            found[name] = calls_in(body)
    return found


def imported(module: str) -> set[str]:
    names = set()
    for sub, items in IMPORT.findall((CONTROLLER / module).read_text()):
        if sub:
            names.add(sub)
        else:
            names.update(n.strip(" ()\n") for n in items.split(","))
    return {f"{n}.py" for n in names if (CONTROLLER / f"{n}.py").exists()}


def closure(start: str, skip: set[str] = frozenset()) -> set[str]:
    """`start` and the controller modules it imports, transitively, not entering `skip`."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen or module in skip:
            continue
        seen.add(module)
        todo.extend(imported(module))
    return seen


def needs_of(modules: set[str]) -> dict:
    """{(group, resource): verbs} the given modules call, directly or through a wrapper."""
    table = wrappers()
    out: dict = {}
    for module in modules:
        source = (CONTROLLER / module).read_text()
        for name, calls in table.items():
            if re.search(rf"(?<!def )\b{name}\(", source):
                for group, resource, verb in calls:
                    out.setdefault((group, resource), set()).add(verb)
    return out


def test_every_client_call_is_in_a_function_the_derivation_sees():
    """So nothing escapes: each API call in the controller is inside a known wrapper function."""
    calls = set()
    for path in CONTROLLER.glob("*.py"):
        calls |= calls_in(path.read_text())
    seen = set().union(*wrappers().values())
    assert calls - seen <= {("videogen.io", "videojobs/status", "patch"), ("videogen.io", "videojobs", "patch")} and calls
    assert {"patch_status", "patch_metadata", "read_secret"} <= set(wrappers())


@pytest.fixture(scope="module")
def code_needs() -> dict[str, dict]:
    inline_only = {p.name for p in CONTROLLER.glob("*.py") if p.name.startswith(("inline", "jobrun"))}
    operator = closure("main.py", skip=inline_only)
    return {
        "operator": needs_of(operator - {"leader.py"}),
        "inline": needs_of(closure("main.py") - {"leader.py"}),
        # The worker borrows the Job executor's client class for one read; it runs none of its code.
        "worker": needs_of(closure("worker.py", skip=inline_only | {"main.py", "job_executor.py"})),
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
    expected = merge(code_needs["inline"], KOPF, KOPF_DISCOVERY)
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
    expected = needs_of({"leader.py"})[LEASES] if (CONTROLLER / "leader.py").exists() else {"get", "create", "patch"}
    assert rules_of(role) == {LEASES: expected}
    for rule in role["rules"]:
        if rule["verbs"] != ["create"]:  # the only verb resourceNames cannot narrow
            assert rule["resourceNames"] == ["videojob-operator"]
    binding = rendered.one("RoleBinding", "videojob-operator-leader-election", NAMESPACE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "videojob-operator", "namespace": NAMESPACE}]
    for cluster_role in rendered.all("ClusterRole"):
        assert ("coordination.k8s.io", "leases") not in rules_of(cluster_role)
    env = rendered.container()["env"]
    assert {"name": "VIDEOJOB_LEADER_ELECTION", "value": "true"} in env
    assert {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in env


def test_more_replicas_roll_and_need_leader_election(render):
    deployment = render(set_=["replicaCount=2"]).one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    from tests.deploy.conftest import HelmError

    with pytest.raises(HelmError, match="leaderElection"):
        render(set_=["replicaCount=2", "leaderElection.enabled=false"])
    single = render(set_=["leaderElection.enabled=false"])
    assert not single.all("Role") and "VIDEOJOB_LEADER_ELECTION" not in single.env()

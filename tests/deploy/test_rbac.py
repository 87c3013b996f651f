"""Least privilege, derived from the code: the chart grants exactly the verbs the operator and the
worker call (their Kubernetes client calls, found in the source) plus what Kopf itself does, and
nothing else; in job mode the operator holds no Secret right anywhere."""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

import pytest

from tests.deploy.conftest import FULL_VALUES, NAMESPACE
from tests.deploy.test_chart import rules_of
from videojob.config import Settings
from videojob.controller import kube
from videojob.controller.worker_identity import worker_identity

CONTROLLER = Path(kube.__file__).parent

KINDS = r"(custom_object_status|custom_object|job|pod|event|secret|lease|service_account|role_binding|network_policy)"
# `list_namespaced_job`, and the cluster-wide `list_job_for_all_namespaces`.
API_CALL = re.compile(rf"\b(create|read|get|list|patch|delete|replace)_(?:namespaced_{KINDS}|{KINDS}_for_all_namespaces)\b")
VERB = {"create": "create", "read": "get", "get": "get", "list": "list", "patch": "patch", "delete": "delete", "replace": "update"}
RESOURCE = {"custom_object_status": ("videogen.io", "videojobs/status"), "custom_object": ("videogen.io", "videojobs"),
            "job": ("batch", "jobs"), "pod": ("", "pods"), "event": ("", "events"), "secret": ("", "secrets"),
            "lease": ("coordination.k8s.io", "leases"), "service_account": ("", "serviceaccounts"),
            "role_binding": ("rbac.authorization.k8s.io", "rolebindings"),
            "network_policy": ("networking.k8s.io", "networkpolicies")}
# The same through the client's generic `call_api(path, method)`, and cluster-scoped Namespaces.
RAW_CALL = re.compile(r'call_api,\s*"/apis?/(?:v1|([\w.]+)/\w+)/namespaces/\{namespace\}/(\w+)(/\{name\})?",\s*"(\w+)"')
RAW_VERB = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
NAMESPACE_CALL = re.compile(r"\b(read|list|patch)_namespace\b")
# Kueue's Workloads go through the same custom-object calls, named by their group constant.
KUEUE_CALL = re.compile(r"\b(create|read|get|list|patch|delete|replace)_namespaced_custom_object,\s*KUEUE_GROUP\b")
KUEUE_WORKLOADS = ("kueue.x-k8s.io", "workloads")
STATUS_PATCH = re.compile(r"_patch\([^)]*status_subresource=(True|False)")
IMPORT = re.compile(r"from videojob\.controller(?:\.(\w+))? import (\([^)]*\)|[\w, ]+)")

# What Kopf does by itself: watch what handlers are registered for (VideoJobs; with the Job
# executor its Jobs and pods), patch VideoJobs (finalizer, progress annotations), post Events;
# watching all namespaces, discover CRDs.
KOPF = {("videogen.io", "videojobs"): {"list", "watch", "patch"}, ("", "events"): {"create"}}
KOPF_JOB_MODE = {("batch", "jobs"): {"list", "watch"}, ("", "pods"): {"list", "watch"}}
KOPF_DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"}}
LEASES = ("coordination.k8s.io", "leases")
# The operator makes the worker identity (all namespaces, job mode) in this module only; its rights
# are granted only where it does (`identity_needs`).
IDENTITY = "job_identity.py"
IDENTITY_KINDS = {"ServiceAccount": ("", "serviceaccounts"), "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
                  "NetworkPolicy": ("networking.k8s.io", "networkpolicies")}
CLUSTER_ROLES = ("rbac.authorization.k8s.io", "clusterroles")


def merge(*needs: dict) -> dict:
    out: dict = {}
    for need in needs:
        for key, verbs in need.items():
            out.setdefault(key, set()).update(verbs)
    return out


def wrappers() -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    """{(module, function): what it calls} of every controller function that calls the API
    (`_patch(status_subresource=...)` callers resolved to the one subresource they patch)."""
    found = {}
    for path in sorted(CONTROLLER.glob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = (ast.get_source_segment(text, node) or "").split("\n", 1)[-1]
            status = STATUS_PATCH.search(body)
            if status:
                found[(path.name, node.name)] = {("videogen.io", "videojobs/status" if status.group(1) == "True" else "videojobs", "patch")}
            elif calls_in(body) and (path.name, node.name) != ("kube.py", "_patch"):
                found[(path.name, node.name)] = calls_in(body)
    return found


def calls_in(source: str) -> set[tuple[str, str, str]]:
    kueue = {(*KUEUE_WORKLOADS, VERB[verb]) for verb in KUEUE_CALL.findall(source)}
    source = KUEUE_CALL.sub("", source)
    found = kueue | {(*RESOURCE[named or everywhere], VERB[verb]) for verb, named, everywhere in API_CALL.findall(source)}
    for group, resource, named, method in RAW_CALL.findall(source):
        verb = ("get" if named else "list") if method == "GET" else RAW_VERB[method]
        found.add((group or "", resource, verb))
    found |= {("", "namespaces", VERB[verb]) for verb in NAMESPACE_CALL.findall(source)}
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


def names_used(module: str) -> set[str]:
    """Names the module's code uses (tokens: not in comments or strings, not the one after `def`)."""
    used, previous = set(), None
    with open(CONTROLLER / module, "rb") as f:
        for token in tokenize.tokenize(f.readline):
            if token.type == tokenize.NAME and previous != "def":
                used.add(token.string)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                previous = token.string
    return used


def defined_in(module: str) -> set[str]:
    """Functions the module defines with a body (a Protocol's `...` stubs do not count)."""
    out = set()
    for node in ast.walk(ast.parse((CONTROLLER / module).read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
            if body:
                out.add(node.name)
    return out


def needs_of(modules: set[str]) -> dict:
    """{(group, resource): verbs} the given modules call: directly, or through a wrapper called (or
    passed, as to a retry helper) by name. A wrapper defined in the module itself means that one."""
    table = wrappers()
    out: dict = {}
    for module in modules:
        own = defined_in(module)
        used = names_used(module)
        for (where, name), calls in table.items():
            if name in used and (where == module or name not in own):
                for group, resource, verb in calls:
                    out.setdefault((group, resource), set()).add(verb)
    return out


def test_every_client_call_is_in_a_function_the_derivation_sees():
    """So nothing escapes: each API call in the controller is inside a known wrapper function."""
    calls = set()
    for path in CONTROLLER.glob("*.py"):
        calls |= calls_in(path.read_text())
    seen = set().union(*wrappers().values())
    assert calls and calls == seen
    assert {"patch_status", "patch_metadata", "list_secrets"} <= {name for _, name in wrappers()}


@pytest.fixture(scope="module")
def code_needs() -> dict[str, dict]:
    inline_only = {p.name for p in CONTROLLER.glob("*.py") if p.name.startswith(("inline", "jobrun"))}
    operator = closure("main.py", skip=inline_only)
    assert IDENTITY in operator  # the Job executor reaches it: its calls are the operator's
    return {
        "operator": needs_of(operator - {"leader.py", IDENTITY}),
        "identity": needs_of({IDENTITY}),
        "inline": needs_of(closure("main.py") - {"leader.py", IDENTITY}),
        # The worker borrows the Job executor's client class for one read; it runs none of its code.
        "worker": needs_of(closure("worker.py", skip=inline_only | {"main.py", "job_executor.py"})),
    }


def identity_needs(code_needs: dict, network_policy: bool = True) -> dict:
    """The worker identity's rights: what `job_identity.py` calls, on exactly the kinds
    `worker_identity()` builds, plus `bind` on the ClusterRole its RoleBinding names (Kubernetes'
    escalation check: without it the operator could not grant the worker's rights)."""
    settings = Settings(worker_cluster_role="videojob-operator-worker",
                        worker_network_policy='{"podSelector": {}}' if network_policy else "{}")
    built = {IDENTITY_KINDS[obj["kind"]] for obj in worker_identity("team-a", settings)}
    assert built <= set(code_needs["identity"]) == set(IDENTITY_KINDS.values())
    needs = {kind: verbs for kind, verbs in code_needs["identity"].items() if kind in built}
    return merge(needs, {CLUSTER_ROLES: {"bind"}})


def test_job_mode_operator_clusterrole_is_exactly_what_the_code_and_kopf_use(render, code_needs):
    rendered = render()
    role = rules_of(rendered.one("ClusterRole", "videojob-operator"))
    expected = merge(code_needs["operator"], KOPF, KOPF_JOB_MODE, KOPF_DISCOVERY, identity_needs(code_needs))
    assert role == expected
    assert ("", "secrets") not in role  # never a Secret, in any namespace
    # Create what is missing, repair what drifted; a RoleBinding is only created (roleRef is immutable).
    assert code_needs["identity"][IDENTITY_KINDS["RoleBinding"]] == {"get", "create"}
    (bind,) = [r for r in rendered.one("ClusterRole", "videojob-operator")["rules"] if "bind" in r["verbs"]]
    assert bind["resourceNames"] == ["videojob-operator-worker"]  # that one role, nothing else
    assert {"name": "VIDEOJOB_WORKER_CLUSTER_ROLE", "value": "videojob-operator-worker"} in rendered.container()["env"]


def test_without_a_worker_networkpolicy_the_operator_may_not_touch_networkpolicies(render, code_needs):
    rendered = render(set_=["networkPolicy.enabled=false"])
    role = rules_of(rendered.one("ClusterRole", "videojob-operator"))
    assert role == merge(code_needs["operator"], KOPF, KOPF_JOB_MODE, KOPF_DISCOVERY,
                         identity_needs(code_needs, network_policy=False))
    assert ("networking.k8s.io", "networkpolicies") not in role
    assert "VIDEOJOB_WORKER_NETWORK_POLICY" not in rendered.env()


def test_inline_mode_operator_gets_secrets_because_it_reads_them_itself(render, code_needs):
    role = rules_of(render(set_=["operator.executor=inline"]).one("ClusterRole", "videojob-operator"))
    expected = merge(code_needs["inline"], KOPF, KOPF_DISCOVERY)
    for job_only in (("batch", "jobs"), ("", "pods"), KUEUE_WORKLOADS):
        expected.pop(job_only, None)
    assert role == expected
    assert role[("", "secrets")] == {"list"}  # by name and the credentials label


def test_named_namespace_roles_grant_the_same_without_cluster_scope(render, code_needs):
    rendered = render(FULL_VALUES, set_=["grafanaDashboard.enabled=false"])
    for ns in ("videos", "videos-staging"):
        role = rules_of(rendered.one("Role", "videojob-operator", ns))
        assert role == merge(code_needs["operator"], KOPF, KOPF_JOB_MODE)
    assert not rendered.all("ClusterRoleBinding")


def test_worker_role_is_exactly_what_the_worker_calls(render, code_needs):
    role = rules_of(render().one("ClusterRole", "videojob-operator-worker"))
    assert role == code_needs["worker"]
    assert role[("", "secrets")] == {"list"} and role[("videogen.io", "videojobs/status")] == {"patch"}


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

"""resourceVersions are opaque (issue 12): the emulated API server hands out tokens that are not
numbers and do not sort in write order, and serves watches the way kube-apiserver does (resume
from a version, 410 Gone for one too old, bookmarks). Every operator test runs against this."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import kubernetes
import pytest

from tests.controller.conftest import NAMESPACE
from tests.helpers import condition, wait_until

MERGE = "application/merge-patch+json"


def secret(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "stringData": {"k": "v"}}


def open_watch(apiserver, resource_version: str, **params: str) -> Any:
    """A watch on Secrets from `resource_version` (an HTTP stream of JSON lines)."""
    query = urllib.parse.urlencode({"watch": "true", "resourceVersion": resource_version, **params})
    return urllib.request.urlopen(f"{apiserver.url}/api/v1/namespaces/{NAMESPACE}/secrets?{query}", timeout=10)


def watch_lines(apiserver, resource_version: str, count: int) -> list[dict[str, Any]]:
    """The first `count` events of a watch on Secrets from `resource_version`."""
    with open_watch(apiserver, resource_version) as stream:
        return [json.loads(stream.readline()) for _ in range(count)]


def test_resource_versions_are_opaque_tokens_not_numbers_in_write_order(apiserver, kube):
    written = [kube.core.create_namespaced_secret(NAMESPACE, secret(f"s{i:02d}")).metadata.resource_version
               for i in range(30)]
    assert len(set(written)) == 30
    assert not any(version.isdigit() for version in written)
    assert sorted(written) != written  # ordering them says nothing about when they were written
    assert [apiserver.write_order({"metadata": {"resourceVersion": v}}) for v in written] == sorted(
        apiserver.write_order({"metadata": {"resourceVersion": v}}) for v in written)

    # A precondition is an equality check: the current version passes, any other is a conflict.
    current = kube.core.read_namespaced_secret("s00", NAMESPACE).metadata.resource_version
    with pytest.raises(kubernetes.client.ApiException) as refused:
        kube.core.patch_namespaced_secret("s00", NAMESPACE, {"metadata": {"resourceVersion": written[1], "labels": {"a": "b"}}})
    assert refused.value.status == 409
    patched = kube.core.patch_namespaced_secret("s00", NAMESPACE, {"metadata": {"resourceVersion": current, "labels": {"a": "b"}}})
    assert patched.metadata.resource_version not in (current, *written)


def test_a_watch_resumes_from_a_version_and_gets_410_gone_once_it_is_compacted(apiserver, kube):
    listed = kube.core.list_namespaced_secret(NAMESPACE).metadata.resource_version
    kube.core.create_namespaced_secret(NAMESPACE, secret("first"))
    kube.core.create_namespaced_secret(NAMESPACE, secret("second"))
    events = watch_lines(apiserver, listed, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "first"), ("ADDED", "second")]

    apiserver.run("compact")
    (expired,) = watch_lines(apiserver, listed, 1)
    assert expired["type"] == "ERROR" and expired["object"]["code"] == 410
    (unknown,) = watch_lines(apiserver, "not-a-version-of-this-server", 1)
    assert unknown["type"] == "ERROR" and unknown["object"]["code"] == 410

    # Bookmarks carry the current version to a watch that asked for them.
    now = kube.core.list_namespaced_secret(NAMESPACE).metadata.resource_version
    with open_watch(apiserver, now, allowWatchBookmarks="true") as stream:
        apiserver.run("bookmark")
        event = json.loads(stream.readline())
    assert event["type"] == "BOOKMARK" and event["object"]["metadata"]["resourceVersion"] == now


def test_the_operator_lists_again_when_its_watch_is_too_old_and_goes_on(operator, kube, apiserver):
    operator()  # no VIDEOJOB_LLM_MODEL: a prompt-only VideoJob fails at once, nothing renders
    kube.create("before", {"topic": "Before", "prompt": "Explain"})
    kube.wait_phase("before", "Failed")

    # Other writes, then etcd compacts and the watch connection drops: Kopf resumes from a
    # version that is gone.
    kube.core.create_namespaced_secret(NAMESPACE, secret("elsewhere"))
    apiserver.run("compact")
    apiserver.run("drop_watches")
    kube.create("after", {"topic": "After", "prompt": "Explain"})
    status = kube.wait_phase("after", "Failed")["status"]
    assert condition(status, "Succeeded")["reason"] == "InvalidSpec"
    wait_until(lambda: apiserver.call(lambda server: server.window.expired) >= 1, message="a watch was answered 410 Gone")

"""The one credential reader: what each answer of the API server becomes."""

from __future__ import annotations

import uuid

import pytest
from kubernetes.client.rest import ApiException
from tenacity import wait_none

from videojob.api.manifest import parse_videojob
from videojob.controller.credentials import READ_ATTEMPTS, CredentialsUnavailable, read_credentials
from videojob.logs import MASK, mask


class SecretAPI:
    """`read_labelled_secret` answering from a script: values to return or exceptions to raise, in turn."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    async def read_labelled_secret(self, namespace, name, keys):
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def job(secret: str | None = "llm-keys"):
    llm = {"model": "openai:m"} | ({"credentialsSecretRef": {"name": secret}} if secret else {})
    return parse_videojob({"apiVersion": "videogen.io/v1alpha1", "kind": "VideoJob",
                           "metadata": {"name": "j", "namespace": "team", "uid": "u", "generation": 1},
                           "spec": {"topic": "T", "prompt": "p", "llm": llm}})


async def read(api, spec=None):
    return await read_credentials(None, "team", spec or job(), wait=wait_none(), read=api.read_labelled_secret)


async def test_every_value_read_is_registered_for_redaction():
    key = "credkey" + uuid.uuid4().hex
    assert await read(SecretAPI({"OPENAI_API_KEY": key})) == {"OPENAI_API_KEY": key}
    assert mask(f"calling with {key}") == f"calling with {MASK}"


async def test_no_secret_named_reads_nothing():
    api = SecretAPI(AssertionError("must not be called"))
    assert await read(api, job(secret=None)) is None and api.calls == 0


async def test_a_throttled_or_failing_api_server_is_retried_in_place():
    key = "credkey" + uuid.uuid4().hex
    api = SecretAPI(ApiException(status=429), ApiException(status=503), {"KEY": key})
    assert await read(api) == {"KEY": key}
    assert api.calls == 3


async def test_an_api_server_failing_on_every_try_fails_the_attempt_after_the_budget():
    api = SecretAPI(ApiException(status=500))
    with pytest.raises(CredentialsUnavailable) as raised:
        await read(api)
    assert api.calls == READ_ATTEMPTS
    assert "HTTP 500" in raised.value.message and not raised.value.permanent


@pytest.mark.parametrize(("status", "says"), [(404, "does not exist"), (403, "forbidden"), (401, "forbidden")])
async def test_a_missing_or_forbidden_secret_fails_at_once_naming_it(status, says):
    api = SecretAPI(ApiException(status=status))
    with pytest.raises(CredentialsUnavailable) as raised:
        await read(api)
    assert api.calls == 1
    error = raised.value
    assert error.reason == "CredentialsUnavailable" and says in error.message
    assert "'llm-keys'" in error.message and "'team'" in error.message and "spec.llm.credentialsSecretRef" in error.message


async def test_a_bug_is_not_turned_into_a_credentials_retry_loop():
    api = SecretAPI(TypeError("read_labelled_secret() got an unexpected keyword argument"))
    with pytest.raises(TypeError):
        await read(api)
    assert api.calls == 1

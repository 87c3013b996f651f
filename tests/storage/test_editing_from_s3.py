"""Editing with AWS on: version 2 starts from version 1's code as stored in S3."""

from __future__ import annotations

import re
import shutil

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from videojob.api.manifest import load_manifest
from videojob.api.models import EditingSpec
from videojob.config import Settings
from videojob.run import run_videojob

from .conftest import REPO

pytestmark = pytest.mark.render
FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)


class EditingModel(GenericFakeChatModel):
    """Answers an edit request with the code it was shown plus a marker line, and keeps the prompts."""

    prompts: list[str] = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        text = "\n".join(str(m.content) for m in messages)
        self.prompts.append(text)
        shown = FENCE.findall(text)[-1]
        self.messages = iter([AIMessage(content=f"```python\n{shown.rstrip()}\n# edited: make it red\n```")])
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


async def test_editing_downloads_the_previous_code_from_s3_and_records_the_parent(aws_env, make_service, tmp_path, s3_client):
    service = await make_service()
    job = load_manifest(str(REPO / "examples" / "hello.yaml"))
    first = await run_videojob(job, settings=Settings(), store_root=tmp_path / "a", quality="low")
    assert first.succeeded, first.status.message
    assert first.status.outputs.video_uri.startswith("s3://")

    # Another machine, empty disk: the code can only come from S3.
    shutil.rmtree(tmp_path / "a")
    edit = job.model_copy(deep=True)
    edit.metadata.generation = 2
    edit.spec.editing = EditingSpec(feedback="make it red")
    model = EditingModel(messages=iter([]), prompts=[])
    second = await run_videojob(edit, settings=Settings(), store_root=tmp_path / "b", quality="low", llm=model)
    assert second.succeeded, second.status.message
    assert second.status.version == 2

    v1_scene = s3_client.get_object(Bucket=aws_env["AWS_S3_CODE_BUCKET"], Key="code/demo/hello/v1/scenes/scene_01.py")["Body"].read().decode()
    assert any(v1_scene.strip() in prompt and "make it red" in prompt for prompt in model.prompts)
    v2_scene = s3_client.get_object(Bucket=aws_env["AWS_S3_CODE_BUCKET"], Key="code/demo/hello/v2/scenes/scene_01.py")["Body"].read().decode()
    assert v2_scene.rstrip().endswith("# edited: make it red")
    record = await service.latest_version("demo", "hello")
    assert (record.version, record.parent_version) == (2, 1)

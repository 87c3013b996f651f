"""Planning from spec.prompt: a validated plan, one repair round, the plan stored with the version."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from videojob.config import Settings
from videojob.run import run_videojob

from tests.llm.conftest import ScriptedChatModel, answer, fenced, good_code, make_job, plan_json

pytestmark = pytest.mark.render


async def test_plan_from_prompt_is_validated_rendered_and_stored(tmp_path):
    model = GenericFakeChatModel(
        messages=iter([answer(plan_json("The unit circle"), 120, 40), answer(fenced(good_code()), 300, 90)])
    )
    job = make_job(prompt="Explain the unit circle", description="For high-school students")
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    plan = json.loads((tmp_path / "tests" / "demo" / "v1" / "plan.json").read_text())
    assert plan["scenes"][0]["title"] == "The unit circle"
    assert plan["scenes"][0]["narration"] == "This is The unit circle."
    assert plan["scenes"][0]["duration_seconds"] == 2
    assert result.status.outputs.scenes == 1
    assert (tmp_path / "tests" / "demo" / "v1" / "demo.mp4").stat().st_size > 0
    usage = result.status.usage
    assert (usage.llm_calls, usage.prompt_tokens, usage.completion_tokens) == (2, 420, 130)


async def test_planner_prompt_carries_topic_description_and_request(tmp_path):
    def respond(messages):
        if "plan short educational videos" in str(messages[0].content):
            return answer(plan_json("First", "Second"))
        scene = 1 if "Scene 1 of 2" in str(messages[-1].content) else 2
        return answer(fenced(good_code(f"Scene{scene:02d}", "RED" if scene == 1 else "GREEN")))

    model = ScriptedChatModel(respond=respond)
    job = make_job(prompt="Two scenes about circles", description="Keep it short")
    result = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    planning = model.calls[0].text
    assert "Topic: Circles" in planning and "Keep it short" in planning and "Two scenes about circles" in planning
    titles = [s.title for s in result.state.scenes]
    assert titles == ["First", "Second"]
    codegen = {c.text.split("Scene ")[1][:6]: c for c in model.calls[1:]}
    assert set(codegen) == {"1 of 2", "2 of 2"}
    assert "Narration: This is Second." in codegen["2 of 2"].text
    assert result.status.outputs.scenes == 2


async def test_unparsable_plan_gets_one_repair_round(tmp_path):
    model = ScriptedChatModel(
        script=[
            "Sure! I would show a circle, then a square.",
            answer(f"```json\n{plan_json('Circle')}\n```"),
            answer(fenced(good_code())),
        ]
    )
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    repair = model.calls[1].messages
    assert "Sure! I would show a circle" in str(repair[-2].content)  # the model sees its own answer
    assert "not valid" in str(repair[-1].content) and "no JSON object" in str(repair[-1].content)
    assert result.status.usage.llm_calls == 3


async def test_plan_that_breaks_the_schema_is_repaired_with_the_field_named(tmp_path):
    too_long = json.dumps({"scenes": [{"title": "Circle", "duration_seconds": 500}]})
    model = ScriptedChatModel(script=[too_long, plan_json("Circle"), answer(fenced(good_code()))])
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    assert "scenes.0.duration_seconds" in str(model.calls[1].messages[-1].content)


async def test_plan_still_invalid_after_the_repair_fails_the_run(tmp_path):
    model = ScriptedChatModel(script=["no plan here", "still no plan"])
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.status.phase == "Failed"
    assert result.error.reason == "InvalidContent"
    assert "not valid after one repair" in result.status.message
    assert len(model.calls) == 2
    assert result.status.usage.llm_calls == 2  # the calls of the failed stage are still counted
    planning = next(s for s in result.status.stages if s.name == "Planning")
    assert planning.phase == "Failed"

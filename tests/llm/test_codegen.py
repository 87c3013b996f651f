"""Code generation: tool calls, the self-healing loop and its bound, windowed memory, editing."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from videojob.config import Settings
from videojob.pipeline.codegen import trim_error
from videojob.pipeline.llm import MAX_TOOL_ROUNDS
from videojob.run import run_videojob

from tests.llm.conftest import (
    ScriptedChatModel,
    answer,
    codegen_calls,
    failing_code,
    fenced,
    good_code,
    make_job,
    metric,
    plan_json,
)

pytestmark = pytest.mark.render


def planning_then(codegen):
    """A respond() that plans one scene, then hands code generation calls to `codegen(n, messages)`."""
    counter = {"n": 0}

    def respond(messages):
        if "plan short educational videos" in str(messages[0].content):
            return answer(plan_json("A circle"))
        counter["n"] += 1
        return codegen(counter["n"], messages)

    return respond


async def test_model_may_look_up_docs_and_check_code_before_answering(tmp_path):
    code = good_code()

    def codegen(n, messages):
        if n == 1:
            return answer(tool_calls=[{"name": "manim_docs", "args": {"name": "Circle"}, "id": "call-1"}])
        if n == 2:
            return answer(tool_calls=[{"name": "check_code", "args": {"code": code}, "id": "call-2"}])
        return answer(fenced(code))

    model = ScriptedChatModel(respond=planning_then(codegen))
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    calls = codegen_calls(model)
    assert len(calls) == 3
    assert calls[0].tools == ["manim_docs", "check_code"]
    docs = [m for m in calls[1].messages if isinstance(m, ToolMessage)]
    assert docs[0].tool_call_id == "call-1" and "class Circle(radius" in docs[0].content
    check = [m for m in calls[2].messages if isinstance(m, ToolMessage)][-1]
    assert check.tool_call_id == "call-2" and check.content.startswith("OK")
    assert isinstance(calls[2].messages[-2], AIMessage) and calls[2].messages[-2].tool_calls
    assert result.status.usage.llm_calls == 4  # plan + three code generation rounds


async def test_check_code_tool_reports_what_the_sandbox_would_refuse(tmp_path):
    bad = "import manimgl\n" + good_code()

    def codegen(n, messages):
        if n == 1:
            return answer(tool_calls=[{"name": "check_code", "args": {"code": bad}, "id": "c1"}])
        return answer(fenced(good_code()))

    model = ScriptedChatModel(respond=planning_then(codegen))
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    tool_reply = [m for m in codegen_calls(model)[1].messages if isinstance(m, ToolMessage)][0]
    assert "REFUSED" in tool_reply.content and "manimgl" in tool_reply.content
    assert result.state.scenes[0].attempts == 1  # no render was spent on the refused code


async def test_tool_rounds_are_bounded_then_the_model_must_answer(tmp_path):
    def codegen(n, messages):
        if n <= MAX_TOOL_ROUNDS:
            return answer(tool_calls=[{"name": "manim_docs", "args": {"name": "Square"}, "id": f"t{n}"}])
        return answer(fenced(good_code()))

    model = ScriptedChatModel(respond=planning_then(codegen))
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    calls = codegen_calls(model)
    assert len(calls) == MAX_TOOL_ROUNDS + 1
    assert all(c.tools == ["manim_docs", "check_code"] for c in calls[:-1])
    assert calls[-1].tools == []  # the last round offers no tools
    assert "No more tool calls" in str(calls[-1].messages[-1].content)


async def test_model_without_tool_calling_is_prompted_plainly(tmp_path):
    model = ScriptedChatModel(
        respond=planning_then(lambda n, m: answer(fenced(good_code()))), tool_calling=False
    )
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    assert [c.tools for c in codegen_calls(model)] == [[]]


async def test_fix_loop_fail_fail_succeed(tmp_path):
    codes = [failing_code("boom one"), failing_code("boom two"), good_code()]
    model = ScriptedChatModel(respond=planning_then(lambda n, m: answer(fenced(codes[n - 1]))))
    before = metric("videojob_render_attempts_total", result="failure")
    result = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=model)
    assert result.succeeded, result.status.message
    scene = result.state.scenes[0]
    assert scene.attempts == 3
    assert [("boom one" in (h.error or ""), "boom two" in (h.error or ""), h.error is None) for h in scene.history] == [
        (True, False, False), (False, True, False), (False, False, True)]
    calls = codegen_calls(model)
    assert len(calls) == 3
    first_repair, second_repair = calls[1].text, calls[2].text
    # The repair prompt carries the failed code and its trimmed traceback...
    assert 'raise ValueError("boom one")' in first_repair and "ValueError: boom one" in first_repair
    assert "in construct" in first_repair  # the traceback frame in the user's code
    # ...and the earlier attempts as memory.
    assert "Attempt 1:" in second_repair and "Attempt 2:" in second_repair and "boom two" in second_repair
    assert (tmp_path / "tests" / "demo" / "v1" / "demo.mp4").stat().st_size > 0
    assert metric("videojob_render_attempts_total", result="failure") - before == 2
    rendering = next(s for s in result.status.stages if s.name == "Rendering")
    assert rendering.attempts == 3


async def test_attempt_bound_holds_and_memory_keeps_the_last_k(tmp_path):
    model = ScriptedChatModel(respond=planning_then(lambda n, m: answer(fenced(failing_code(f"boom number {n}")))))
    job = make_job(render={"maxSceneAttempts": 4})
    result = await run_videojob(job, settings=Settings(repair_memory=2), store_root=tmp_path, llm=model)
    assert result.status.phase == "Failed"
    assert result.error.reason == "RenderFailed"
    assert "scene 1 ('A circle') failed after 4 attempt(s)" in result.status.message
    assert "boom number 4" in result.status.message
    calls = codegen_calls(model)
    assert len(calls) == 4  # one first try and three repairs: never a fifth
    last = calls[-1].text
    assert "boom number 3" in last and "boom number 2" in last
    assert "boom number 1" not in last  # only the last k=2 attempts are remembered
    assert not (tmp_path / "tests" / "demo" / "v1").exists()


async def test_editing_sends_previous_code_and_feedback(tmp_path):
    v1_model = ScriptedChatModel(respond=planning_then(lambda n, m: answer(fenced(good_code(color="BLUE")))))
    first = await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=v1_model)
    assert first.succeeded and first.status.version == 1

    v2_model = ScriptedChatModel(respond=lambda messages: answer(fenced(good_code(color="RED"))))
    job = make_job(generation=2, editing={"feedback": "make the circle red"})
    second = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=v2_model)
    assert second.succeeded, second.status.message
    assert second.status.version == 2
    assert len(v2_model.calls) == 1  # no new plan: the scenes of v1 are edited
    prompt = v2_model.calls[0].text
    assert "color=BLUE" in prompt and "make the circle red" in prompt
    v2 = tmp_path / "tests" / "demo" / "v2"
    assert "color=RED" in (v2 / "scenes" / "scene_01.py").read_text()
    assert '"parent_version": 1' in (v2 / "record.json").read_text()


async def test_failed_edit_is_repaired_with_the_feedback_in_view(tmp_path):
    v1_model = ScriptedChatModel(respond=planning_then(lambda n, m: answer(fenced(good_code()))))
    assert (await run_videojob(make_job(), settings=Settings(), store_root=tmp_path, llm=v1_model)).succeeded
    codes = [failing_code("edit broke it"), good_code(color="YELLOW")]
    v2_model = ScriptedChatModel(respond=lambda messages: answer(fenced(codes.pop(0))))
    job = make_job(generation=2, editing={"feedback": "make it yellow"})
    second = await run_videojob(job, settings=Settings(), store_root=tmp_path, llm=v2_model)
    assert second.succeeded, second.status.message
    repair = v2_model.calls[1].text
    assert "make it yellow" in repair and "edit broke it" in repair


def test_trimmed_traceback_keeps_the_end():
    error = "\n".join(f"  line {i}, in helper: x = f({i})" for i in range(200)) + "\nZeroDivisionError: division by zero"
    trimmed = trim_error(error)
    assert trimmed.endswith("ZeroDivisionError: division by zero")
    assert "line 0," not in trimmed and len(trimmed) <= 2100

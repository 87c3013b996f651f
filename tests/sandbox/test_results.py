"""The parent trusts nothing a sandbox leaves behind: oversized, symlinked or fake results, and
attempts to plant a render-cache entry for somebody else's code."""

from __future__ import annotations

import json
import resource

import pytest

from videojob.api.models import VideoJob
from videojob.config import Settings
from videojob.pipeline.render_cache import RenderCache, cache_key
from videojob.run import run_videojob

from tests.pipeline.conftest import videojob
from tests.sandbox.conftest import SENTINELS, ocr, scene

pytestmark = pytest.mark.render


def leaving(*lines: str) -> str:
    """Scene code that arranges its scratch directory, then exits before the executor can write
    result.json (the cwd of scene code is its scratch directory)."""
    return scene("\n".join(["import os, json", *lines, "os._exit(0)"]))


def result_pointing_at(movie: str) -> str:
    return f"open('.r', 'w').write(json.dumps({{'ok': True, 'movie': {movie!r}}})); os.replace('.r', 'result.json')"


async def test_oversized_and_symlinked_results_are_refused_with_flat_memory(sandbox, planted, tmp_path):
    secret = str(planted.secret_file)
    hostile = {
        "huge result": leaving("open('result.json', 'wb').truncate(400 * 1024 * 1024)"),
        "huge log": leaving("open('render.log', 'r+b').truncate(300 * 1024 * 1024)", "os._exit(1)"),
        "result symlink": leaving(f"os.symlink({secret!r}, 'result.json')"),
        "log symlink": leaving("os.remove('render.log')", f"os.symlink({secret!r}, 'render.log')", "os._exit(1)"),
        "movie symlink": leaving(f"os.symlink({secret!r}, 'm.mp4')", result_pointing_at("m.mp4")),
        "movie absolute": leaving(result_pointing_at(secret)),
        "movie climbing": leaving(result_pointing_at("../../../../../../../../.." + secret)),
        "directory symlink": leaving(f"os.symlink({str(planted.secret_file.parent)!r}, 'media')",
                                     result_pointing_at("media/token")),
        "fifo result": leaving("os.mkfifo('result.json')"),
        "fake movie": leaving("open('fake.mp4', 'w').write('not a video ' * 1000)", result_pointing_at("fake.mp4")),
        "huge error": scene("raise RuntimeError('x' * 10_000_000)"),
    }
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {}
    async with sandbox.job(1) as job:
        for name, code in hostile.items():
            outcomes[name] = await job.render(code, "A", "low", tmp_path / "renders" / "a.mp4")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"parent memory grew by {grown_mb:.0f} MB"
    for name, outcome in outcomes.items():
        assert not outcome.ok, name
        assert len(outcome.error) <= 2100, name
        assert not any(s in outcome.error for s in SENTINELS), (name, outcome.error)
    assert outcomes["huge result"].kind == "BadOutput"
    assert outcomes["huge error"].kind == "RuntimeError"
    assert outcomes["fake movie"].kind == "BadOutput"
    assert {outcomes[n].kind for n in ("movie symlink", "movie absolute", "movie climbing", "directory symlink")} == {"NoOutput"}
    assert not (tmp_path / "renders" / "a.mp4").exists()  # nothing was published for any of them


async def test_scene_code_cannot_plant_a_cache_entry_for_other_code(planted, tmp_path):
    innocent = scene('self.add(Text("GENUINE"))\nself.wait(0.2)')
    store = tmp_path / "store"
    cache_root = store / ".cache" / "renders"
    target = RenderCache(cache_root).path(cache_key(innocent, "A", "low"))
    # The attacker knows where the cache is and which key the innocent scene will use.
    forged = scene(
        'self.add(Text("FORGED"))\nself.wait(0.2)',
        prelude="\n".join([
            "import os, shutil",
            "for path in (%r, %r):" % (str(target), "/sandbox/../" + str(target)),
            "    try:",
            "        os.makedirs(os.path.dirname(path), exist_ok=True)",
            "        open(path, 'wb').write(b'forged')",
            "    except OSError:",
            "        pass",
        ]),
    )
    attacker = await run_videojob(VideoJob.model_validate(videojob({"topic": "Forge", "projectId": "evil", "code": forged,
                                            "render": {"quality": "low"}}, name="forge")),
                                  settings=Settings(), store_root=store)
    assert attacker.succeeded, attacker.status.message
    assert not target.exists()
    victim = await run_videojob(VideoJob.model_validate(videojob({"topic": "Real", "projectId": "good", "code": innocent,
                                          "render": {"quality": "low"}}, name="real")),
                                settings=Settings(), store_root=store)
    assert victim.succeeded, victim.status.message
    assert victim.state.scenes[0].cached is False
    text = ocr(target)
    assert "GENUINE" in text and "FORGED" not in text
    assert json.dumps(victim.tracker.as_dict()).count("bubblewrap") == 1  # status.sandbox


# Scene code that renders, then writes its own result.json (bypassing the executor) and exits.
WARNING_WRITER = '''\
import json, os
from manim import *


class A(Scene):
    def construct(self):
        self.add(Text("hi"))
        self.wait(0.2)

    def render(self, *args, **kwargs):
        super().render(*args, **kwargs)
        movie = json.dumps(os.path.relpath(self.renderer.file_writer.movie_file_path))
        with open('.r', 'w', encoding='utf-8') as f:
{write}
        os.replace('.r', 'result.json')
        os._exit(0)
'''


def writing_warnings(*lines: str) -> str:
    return WARNING_WRITER.format(write="\n".join("            " + line for line in lines))


async def test_warnings_in_a_hostile_result_are_capped_and_cleaned(sandbox, tmp_path):
    hostile = {
        # 10,000 distinct warnings (one CJK character each keeps the file under the result cap).
        "many": writing_warnings("f.write('{\"ok\": true, \"movie\": ' + movie + ', \"warnings\": ')",
                                 "json.dump([chr(0x4E00 + i) for i in range(10_000)], f, ensure_ascii=False,"
                                 " separators=(',', ':'))", "f.write('}')"),
        "long and odd": writing_warnings(
            "f.write(json.dumps({'ok': True, 'movie': json.loads(movie), 'warnings': ["
            "'\\x1b[31m' + 'y' * 20_000 + '\\x00', {'not': 'a string'}, 5, None, '', 'fine']}))"),
        "not a list": writing_warnings("f.write(json.dumps({'ok': True, 'movie': json.loads(movie), 'warnings': 'x' * 1000}))"),
        # 10,000 huge warnings: 200 MB of result, refused by size without being read whole.
        "10,000 huge": writing_warnings("f.write('{\"ok\": true, \"movie\": ' + movie + ', \"warnings\": [')",
                                        "for i in range(10_000):",
                                        "    f.write(('' if i == 0 else ',') + json.dumps('z' * 20_000))",
                                        "f.write(']}')"),
    }
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {}
    async with sandbox.job(1) as job:
        for name, code in hostile.items():
            outcomes[name] = await job.render(code, "A", "low", tmp_path / "renders" / f"{len(outcomes)}.mp4")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"parent memory grew by {grown_mb:.0f} MB"
    many = outcomes["many"]
    assert many.ok, many.error
    assert many.warnings == [chr(0x4E00 + i) for i in range(20)]  # the count cap
    odd = outcomes["long and odd"]
    assert odd.ok, odd.error
    assert len(odd.warnings) == 2 and odd.warnings[1] == "fine"  # strings only, empty ones dropped
    assert len(odd.warnings[0]) <= 310 and set(odd.warnings[0]) <= set("?[31m y.")  # length cap, no control bytes
    assert outcomes["not a list"].ok and outcomes["not a list"].warnings == []
    assert not outcomes["10,000 huge"].ok and outcomes["10,000 huge"].kind == "BadOutput"

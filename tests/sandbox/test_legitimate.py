"""Ordinary Manim code renders in the sandbox: the examples of Manim's documentation are the
yardstick, LaTeX included. Refusing them is as much a defect as letting hostile code out."""

from __future__ import annotations

import pytest

from videojob.pipeline.codecheck import check_code

from tests.sandbox.conftest import ocr

pytestmark = pytest.mark.render

HEADER = "from manim import *\n"

CORPUS = {
    "MathTex": "class S(Scene):\n    def construct(self):\n        self.add(MathTex(r'e^{i\\pi} + 1 = 0'))\n        self.wait(0.1)\n",
    "Tex": "class S(Scene):\n    def construct(self):\n        self.add(Tex(r'Hello \\LaTeX', font_size=96))\n        self.wait(0.1)\n",
    "AxesWithCoordinates": (
        "class S(Scene):\n    def construct(self):\n"
        "        ax = Axes(x_range=[0, 4, 1], y_range=[0, 3, 1]).add_coordinates()\n"
        "        self.add(ax, ax.plot(lambda x: x ** 0.5, color=BLUE))\n        self.wait(0.1)\n"
    ),
    "NumberLine": (
        "class S(Scene):\n    def construct(self):\n"
        "        self.add(NumberLine(x_range=[-3, 3, 1], include_numbers=True))\n        self.wait(0.1)\n"
    ),
    "BarChart": (
        "class S(Scene):\n    def construct(self):\n"
        "        self.add(BarChart(values=[3, 1, 4, 1], bar_names=['a', 'b', 'c', 'd'], y_range=[0, 5, 1]))\n"
        "        self.wait(0.1)\n"
    ),
    # Words and names a pattern-matching check used to refuse, and the standard library scenes use.
    "OrdinaryPython": (
        "import os.path, pathlib, itertools, dataclasses, typing, collections, functools, colorsys\n"
        "from dataclasses import dataclass\n\n@dataclass\nclass Item:\n    label: str\n\n"
        "class S(Scene):\n    def construct(self):\n"
        "        input = [Item('fork'), Item('system')]\n        open = functools.reduce(lambda a, b: a + b, [1, 2])\n"
        "        hue = colorsys.hsv_to_rgb(0.5, 0.5, 0.5)\n"
        "        name = os.path.basename(str(pathlib.Path('a/exec.txt')))\n"
        "        words = ' '.join(i.label for i in itertools.chain(input)) + ' ' + name + str(open)\n"
        "        self.add(Text(words, color=rgb_to_color(hue)))\n        self.wait(0.1)\n"
    ),
}


def test_the_early_check_admits_ordinary_code_and_explains_what_cannot_render():
    for name, body in CORPUS.items():
        assert check_code(HEADER + body) == [], name
    assert "syntax error" in str(check_code("class S(Scene)\n")[0])
    assert "'manimgl' is not installed" in str(check_code("import manimgl\n")[0])


async def test_documentation_style_scenes_render_tex_included(sandbox, tmp_path):
    async with sandbox.job(2) as job:
        import asyncio

        outcomes = await asyncio.gather(*(
            job.render(HEADER + body, "S", "low", tmp_path / f"{name}.mp4") for name, body in CORPUS.items()
        ))
    failures = {name: o.error for name, o in zip(CORPUS, outcomes) if not o.ok}
    assert failures == {}
    assert "fork system" in ocr(tmp_path / "OrdinaryPython.mp4").replace("\n", " ")

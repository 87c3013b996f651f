"""Narration cost: Piper's speed, and what narration adds to the 2-scene demo.

    .venv/bin/python bench/narration.py [--runs 3]

Prints, from measurements in this process (medians):
  1. Piper real-time factor: seconds of synthesis per second of speech (voice loaded once,
     cache off).                                                              target <= 0.5
  2. The 2-scene demo (examples/hello.yaml, quality low) narrated with Piper, over the same demo
     silent (`narration.engine: none`), each run from empty render and narration caches, so the
     narrated run pays for synthesis, the longer scenes and the re-encode with AAC. target <= 1.5
"""

from __future__ import annotations

import sys

# bench/operator.py is named like the stdlib's `operator`; run as a script, this folder would come
# first on sys.path and shadow it. Drop that entry before importing anything else.
sys.path[:] = [p for p in sys.path if p.rstrip("/") != __file__.rsplit("/", 1)[0]]

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PARAGRAPH = (
    "A Fourier series writes a periodic function as a sum of sines and cosines. "
    "Each term has its own frequency and its own weight. "
    "Adding more terms brings the sum closer to the function. "
    "Near a jump the partial sums overshoot by about nine percent, which is called the Gibbs phenomenon. "
    "The weights come from integrals of the function against each sine and cosine."
)
# One sentence per demo scene, about as long as the scene (3 s), so scenes grow only a little.
DEMO_NARRATION = [
    "A VideoJob turns a short description into a video.",
    "It plans the scenes, writes the code, and renders them.",
]


async def piper_real_time_factor(runs: int) -> tuple[float, float, float, float]:
    from videojob.pipeline.narration.piper_engine import PiperEngine, _load
    from videojob.pipeline.narration.text import split_sentences

    engine = PiperEngine(None)
    started = time.perf_counter()
    _load(engine.model)
    load_seconds = time.perf_counter() - started
    sentences = split_sentences(PARAGRAPH)
    factors, cpu, speech = [], [], 0.0
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = await engine.speak(sentences)  # straight to the engine: no cache
        factors.append((time.perf_counter() - started) / result.duration_seconds)
        cpu.append((time.process_time() - cpu_started) / result.duration_seconds)
        speech = result.duration_seconds
    return statistics.median(factors), statistics.median(cpu), speech, load_seconds


def demo_job(narrated: bool):
    from videojob.api.manifest import load_manifest

    job = load_manifest(str(REPO / "examples" / "hello.yaml"))
    spec = job.spec.model_copy(deep=True)
    scenes = [s.model_copy(update={"narration": text if narrated else None}) for s, text in zip(spec.storyboard.scenes, DEMO_NARRATION)]
    spec.storyboard = spec.storyboard.model_copy(update={"scenes": scenes})
    return job.model_copy(update={"spec": spec})


async def demo_seconds(narrated: bool) -> tuple[float, float]:
    from videojob.config import Settings
    from videojob.run import run_videojob

    with tempfile.TemporaryDirectory(prefix="bench-narration-") as root:  # cold caches every run
        started = time.perf_counter()
        result = await run_videojob(demo_job(narrated), settings=Settings(), store_root=Path(root), quality="low")
        seconds = time.perf_counter() - started
    if not result.succeeded:
        raise SystemExit(f"demo run failed: {result.status.message}")
    return seconds, result.status.outputs.duration_seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    factor, cpu, speech, load = await piper_real_time_factor(args.runs)
    print(f"piper: {speech:.1f} s of speech, voice load {load:.2f} s, load average {os.getloadavg()[0]:.1f}")
    print(f"  synthesis seconds per second of speech: {factor:.3f}   (target <= 0.5)")
    print(f"  CPU seconds per second of speech (all threads): {cpu:.3f}")

    await demo_seconds(False)  # warm-up: imports, fonts, the render zygote
    silent, narrated, lengths = [], [], (0.0, 0.0)
    for _ in range(args.runs):  # interleaved, so machine load hits both alike
        s, silent_len = await demo_seconds(False)
        n, narrated_len = await demo_seconds(True)
        silent.append(s)
        narrated.append(n)
        lengths = (silent_len, narrated_len)
    s, n = statistics.median(silent), statistics.median(narrated)
    print(f"demo (2 scenes, low): silent {s:.2f} s for a {lengths[0]:.1f} s video, "
          f"narrated {n:.2f} s for a {lengths[1]:.1f} s video")
    print(f"  narrated / silent wall time: {n / s:.2f}x   (target <= 1.5)")


if __name__ == "__main__":
    asyncio.run(main())

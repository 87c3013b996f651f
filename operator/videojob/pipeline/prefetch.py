"""Render the scenes a job already knows (a code or storyboard source) while the rest of the
pipeline is still being loaded, through the same path the render step takes.

`videojob run` starts a `Prefetch` as soon as the manifest is read; the render step then
`claim`s each scene's render instead of starting it again. A prefetched scene goes through the
same sandbox (instances of this job only), the same hostile-result reader and the same render
cache; it is reported as rendered by this run. Kept free of heavy imports (no LangGraph).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from videojob.pipeline.layout import with_layout_check
from videojob.pipeline.render_cache import RenderCache, cache_key, known_scenes
from videojob.pipeline.sandbox import RenderOutcome, Sandbox, SandboxLimits

# Renders under way in this process, by cache key (the same code renders the same video).
_PENDING: dict[str, asyncio.Future] = {}


def claim(key: str) -> asyncio.Future | None:
    """The prefetched render of `key` (its RenderOutcome; the movie is in the cache), or None."""
    return _PENDING.pop(key, None)


def pending(key: str) -> bool:
    return key in _PENDING


class Prefetch:
    def __init__(self, sandbox: Sandbox, cache: RenderCache, workdir: Path, parallelism: int):
        self._job = sandbox.job(parallelism)
        self._cache = cache
        self._workdir = workdir
        self._keys: list[str] = []

    @classmethod
    def start(cls, job, sandbox: Sandbox, cache: RenderCache, workdir: Path, quality: str | None,
              limits: SandboxLimits, parallelism: int) -> "Prefetch":
        """Begin rendering the job's known, uncached scenes (at most `parallelism` at once)."""
        prefetch = cls(sandbox, cache, workdir, parallelism)
        quality = quality or job.spec.render.quality
        for code, name in known_scenes(job) or []:
            key = cache_key(code, name, quality)
            if key in _PENDING or cache.get(key) is not None:
                continue
            # Like the render step: a storyboard carries its layout check, user code gets it wrapped on.
            checked = code if job.spec.source == "storyboard" else with_layout_check(code, name)
            _PENDING[key] = asyncio.ensure_future(prefetch._render(key, checked, name, quality, limits))
            prefetch._keys.append(key)
        return prefetch

    async def _render(self, key: str, code: str, scene_class: str, quality: str, limits: SandboxLimits) -> RenderOutcome:
        out = self._workdir / f"prefetch-{uuid.uuid4().hex[:12]}.mp4"
        outcome = await self._job.render(code, scene_class, quality, out, limits)
        if outcome.ok:
            outcome = RenderOutcome(True, movie=self._cache.put(key, outcome.movie, outcome.warnings),
                                    warnings=outcome.warnings)
        return outcome

    async def aclose(self) -> None:
        """Stop renders nobody claimed and let this job's sandboxes go."""
        for key in self._keys:
            future = _PENDING.pop(key, None)
            if future is not None:
                future.cancel()
                await asyncio.gather(future, return_exceptions=True)
        await self._job.aclose()

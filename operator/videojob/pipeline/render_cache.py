"""The render cache: finished scene videos by (code, scene class, quality, Manim version).

Kept free of heavy imports: `videojob run` consults it before LangGraph is even imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from importlib.metadata import version as package_version
from pathlib import Path

_MANIM_VERSION = package_version("manim")


def cache_key(code: str, scene_class: str, quality: str) -> str:
    digest = hashlib.sha256()
    for part in (_MANIM_VERSION, quality, scene_class, code):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


class RenderCache:
    """Finished scene videos by cache key. Bounded: past `max_bytes` the least recently used
    entries go (a hit refreshes an entry's mtime). Published versions hold their own hard links,
    so pruning the cache never touches a stored video."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.mp4"

    def get(self, key: str) -> Path | None:
        path = self.path(key)
        try:
            if path.stat().st_size > 0:
                os.utime(path)
                return path
        except FileNotFoundError:
            pass
        return None

    def warnings(self, key: str) -> list[str]:
        """The layout warnings recorded with the entry (written by `put`, from the parent's
        already-capped copy; the cache is never visible inside a sandbox)."""
        try:
            found = json.loads(self._warnings_path(self.path(key)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [w for w in found if isinstance(w, str)] if isinstance(found, list) else []

    @staticmethod
    def _warnings_path(movie: Path) -> Path:
        return movie.with_suffix(".warnings.json")

    def put(self, key: str, movie: Path, warnings: list[str] | None = None) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        sidecar = self._warnings_path(target)
        if warnings:  # before the movie: a reader that finds the movie finds its warnings
            tmp = sidecar.with_name(f".{sidecar.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps(list(warnings)), encoding="utf-8")
            os.replace(tmp, sidecar)
        else:
            sidecar.unlink(missing_ok=True)
        tmp = target.with_name(f".{key}.{uuid.uuid4().hex[:8]}")
        os.replace(movie, tmp)
        os.replace(tmp, target)
        if self.max_bytes is not None:
            self.prune(keep=target)
        return target

    def prune(self, keep: Path | None = None) -> int:
        """Delete least recently used entries until the cache fits; returns bytes freed."""
        entries = []
        for path in self.root.glob("*/*.mp4"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in sorted(entries):
            if total - freed <= (self.max_bytes or 0):
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            self._warnings_path(path).unlink(missing_ok=True)
            freed += size
        return freed


def known_scenes(job) -> list[tuple[str, str]] | None:
    """(code, scene class) of the job's scenes when known before planning (a code or storyboard
    source); None when only planning can tell (a prompt, an edit)."""
    spec = job.spec
    if spec.editing is not None or spec.source not in ("code", "storyboard"):
        return None
    if spec.source == "code":
        from videojob.pipeline.codecheck import scene_classes

        try:
            return [(spec.code, name) for name in scene_classes(spec.code)]
        except SyntaxError:
            return []  # planning reports it, naming the line
    from videojob.pipeline.storyboard import generate_scene_code, scene_class_name

    # A narrated scene's code depends on how long its voice lasts (known after Narrating).
    spoken = spec.narration is None or spec.narration.engine != "none"
    return [(generate_scene_code(s, i), scene_class_name(i)) for i, s in enumerate(spec.storyboard.scenes)
            if not (spoken and s.narration)]


def uncached_known_scenes(job, cache_root: Path, quality: str | None = None) -> int | None:
    """How many of the job's scenes are known before planning and not in the cache (None: not
    known yet). Lets a caller warm sandboxes ahead of need, and start none when all is cached."""
    scenes = known_scenes(job)
    if scenes is None:
        return None
    quality = quality or job.spec.render.quality
    cache = RenderCache(cache_root)
    return sum(1 for code, name in scenes if cache.get(cache_key(code, name, quality)) is None)

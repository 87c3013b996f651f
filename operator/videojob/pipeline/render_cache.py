"""The render cache: finished scene videos by (code, scene class, quality, Manim version), and
joined videos by the scene videos they were joined from (`joined_key`).

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
JOIN_FORMAT = 1  # bump when the way scenes are joined changes: old joined entries stop matching


def cache_key(code: str, scene_class: str, quality: str) -> str:
    digest = hashlib.sha256()
    for part in (_MANIM_VERSION, quality, scene_class, code):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def joined_key(scene_videos: list[Path]) -> str:
    """The key of the silent join of `scene_videos`, in order: their contents (not their cache
    keys: an entry rendered again after pruning is another file) and the PyAV that joins them."""
    digest = hashlib.sha256(f"joined\0{JOIN_FORMAT}\0{package_version('av')}\0".encode())
    for video in scene_videos:
        with open(video, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
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

    def facts(self, key: str) -> dict | None:
        """What `put` was told about the entry's video (e.g. a joined video's duration), or None."""
        try:
            found = json.loads(self._facts_path(self.path(key)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    @staticmethod
    def _warnings_path(movie: Path) -> Path:
        return movie.with_suffix(".warnings.json")

    @staticmethod
    def _facts_path(movie: Path) -> Path:
        return movie.with_suffix(".facts.json")

    def put(self, key: str, movie: Path, warnings: list[str] | None = None, facts: dict | None = None) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Sidecars before the movie: a reader that finds the movie finds its warnings and facts.
        _write_or_remove(self._warnings_path(target), list(warnings) if warnings else None)
        _write_or_remove(self._facts_path(target), facts)
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
            self._facts_path(path).unlink(missing_ok=True)
            freed += size
        return freed


def _write_or_remove(sidecar: Path, content: list | dict | None) -> None:
    if content is None:
        sidecar.unlink(missing_ok=True)
        return
    tmp = sidecar.with_name(f".{sidecar.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(content), encoding="utf-8")
    os.replace(tmp, sidecar)


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

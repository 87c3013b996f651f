"""The files of one local version, `{root}/{projectId}/{videoId}/v{N}/`, and how a version
directory comes to be: reserved as a hidden `.v{N}.partial/` (an atomic `mkdir`), filled,
`record.json` written last, renamed to `v{N}` in one step.

Plain files and JSON only (no models): `LocalVersionStore` builds on it, and so does a replayed
`videojob run` (cli/replay.py), which must not pay for importing pydantic.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

_VERSION_DIR = re.compile(r"^\.?v(\d+)(\.partial)?$")
RESERVATION = "reservation.json"
RECORD = "record.json"


def scene_file(index: int, suffix: str) -> str:
    return f"scene_{index + 1:02d}{suffix}"


def numbers(base: Path) -> dict[int, Path]:
    """Version numbers taken under a video's directory (published or reserved), with their paths."""
    found: dict[int, Path] = {}
    if base.is_dir():
        for entry in base.iterdir():
            m = _VERSION_DIR.match(entry.name)
            if m and entry.is_dir():
                found[int(m.group(1))] = entry
    return found


def reserve_number(base: Path, number: int, exact: bool, owner: dict[str, Any]) -> tuple[int, Path]:
    """Reserve `number` under `base` (or, unless `exact`, the next free one from it) and return it
    with its partial directory, which holds `reservation.json` (`owner` plus the number).
    `exact`: the number was chosen elsewhere (DynamoDB); a leftover local directory with it is
    stale and is replaced."""
    base.mkdir(parents=True, exist_ok=True)
    while True:
        partial = base / f".v{number}.partial"
        try:
            if (base / f"v{number}").exists():
                raise FileExistsError
            partial.mkdir()
        except FileExistsError:
            if not exact:
                number += 1
            else:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(base / f"v{number}", ignore_errors=True)
            continue
        (partial / RESERVATION).write_text(json.dumps({**owner, "version": number}))
        return number, partial


def write_files(
    partial: Path, video_id: str, video: Path, combined_code: str, scene_codes: list[str],
    scene_videos: list[Path], subtitles: Iterable[Path] = (), plan: dict[str, Any] | None = None,
) -> None:
    """A version's files: `{videoId}.mp4` and `.py`, `scenes/scene_NN.{py,mp4}`, subtitle
    sidecars, `plan.json`. Videos are hard links where possible."""
    scenes = partial / "scenes"
    scenes.mkdir(exist_ok=True)
    link_or_copy(video, partial / f"{video_id}.mp4")
    (partial / f"{video_id}.py").write_text(combined_code, encoding="utf-8")
    for i, code in enumerate(scene_codes):
        (scenes / scene_file(i, ".py")).write_text(code, encoding="utf-8")
    for i, scene_video in enumerate(scene_videos):
        link_or_copy(scene_video, scenes / scene_file(i, ".mp4"))
    for sidecar in subtitles:  # {videoId}.vtt, {videoId}.srt
        shutil.copyfile(sidecar, partial / f"{video_id}{sidecar.suffix}")
    if plan is not None:
        (partial / "plan.json").write_text(json.dumps(plan, indent=2, ensure_ascii=False))


def publish(partial: Path, version: int, record_json: str) -> Path:
    """Write record.json and make the version visible under its final name."""
    final = partial.parent / f"v{version}"
    if partial == final:
        return final
    (partial / RECORD).write_text(record_json)
    (partial / RESERVATION).unlink(missing_ok=True)
    os.rename(partial, final)
    return final


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when on the same filesystem (instant, no extra space), copy otherwise."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)

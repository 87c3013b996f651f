"""The scratch-directory contract, parent side: prepare a scene, then read back what came out.

A scene's scratch directory holds, before execution, `scene.py` and `request.json`
({"scene_class", "quality", "limits": SandboxLimits.as_request()}); after it, `result.json`
({"ok", "movie": a path relative to the directory, "error", "kind", "warnings": layout problems
as strings}), `render.log` and the movie.

Everything in it after execution was written by untrusted code. `read_outcome` is the ONE
reader of it: files are opened relative to a directory descriptor taken before execution, one
component at a time with O_NOFOLLOW (a symlink to a secret is refused, not followed), FIFOs and
devices are refused, every read is capped, and the movie is copied into a file the parent
created and then demuxed with an explicit container format before anyone else sees it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import uuid
from pathlib import Path

from videojob.pipeline.sandbox.protocol import Execution, RenderOutcome, SandboxLimits

RESULT_MAX_BYTES = 64 * 1024
LOG_TAIL_BYTES = 4000
ERROR_MAX_CHARS = 2000
WARNINGS_MAX = 20  # layout warnings kept per scene
WARNING_MAX_CHARS = 300
_COPY_CHUNK = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_KINDS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,79}$")


def prepare_scratch(scratch: Path, code: str, scene_class: str, quality: str, limits: SandboxLimits) -> int:
    """Create `scratch` with scene.py and request.json; returns a descriptor of the directory
    (O_NOFOLLOW) for `read_outcome`. The caller closes it."""
    os.mkdir(scratch, 0o755)
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    request = {"scene_class": scene_class, "quality": quality, "limits": limits.as_request()}
    _write_new(fd, "scene.py", code.encode("utf-8"))
    _write_new(fd, "request.json", json.dumps(request).encode())
    return fd


def _write_new(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def clean_text(text: str, limit: int = ERROR_MAX_CHARS) -> str:
    """Text from the sandbox made fit for status and logs: no control characters, capped."""
    text = _CONTROL.sub("?", text).strip()
    return text if len(text) <= limit else text[: limit // 4] + " ... " + text[-(limit * 3 // 4):]


def _open_regular(dir_fd: int, relative: str) -> int | None:
    """Open a regular file below `dir_fd`, refusing symlinks, `..`, FIFOs and devices anywhere."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or relative.startswith("/"):
        return None
    fds: list[int] = []
    try:
        current = dir_fd
        for part in parts[:-1]:
            current = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
            fds.append(current)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=current)
    except OSError:
        return None
    finally:
        for opened in fds:
            os.close(opened)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _read_capped(dir_fd: int, name: str, cap: int) -> bytes | None:
    """The whole file; None if absent or not a regular file; raises _TooLarge past `cap`."""
    fd = _open_regular(dir_fd, name)
    if fd is None:
        return None
    try:
        data = os.read(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise _TooLarge
    return data


def _log_tail(dir_fd: int) -> str:
    fd = _open_regular(dir_fd, "render.log")
    if fd is None:
        return ""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, LOG_TAIL_BYTES, max(0, size - LOG_TAIL_BYTES))
    finally:
        os.close(fd)
    lines = data.decode("utf-8", "replace").strip().splitlines()[-3:]
    return clean_text(" | ".join(lines), 600)


def read_outcome(dir_fd: int, out_path: Path, limits: SandboxLimits, execution: Execution) -> RenderOutcome:
    """What a scene's execution produced, trusting nothing in its scratch directory (`dir_fd`,
    from `prepare_scratch`). On success the movie is a parent-made copy at `out_path`."""
    if execution.ended == "timeout":
        return RenderOutcome(False, error=f"timed out after {limits.timeout_seconds:g} s", kind="Timeout")
    try:
        raw = _read_capped(dir_fd, "result.json", RESULT_MAX_BYTES)
    except _TooLarge:
        return RenderOutcome(False, error="the render left an oversized result", kind="BadOutput")
    result = _parse_result(raw)
    if result is None:
        if raw is not None:
            return RenderOutcome(False, error="the render left an unreadable result", kind="BadOutput")
        if execution.ended == "lost":
            detail = f": {execution.detail}" if execution.detail else ""
            return RenderOutcome(False, error="the sandbox stopped unexpectedly" + detail, kind="Crashed")
        return _death(execution.wait_status, _log_tail(dir_fd))
    if not result.get("ok"):
        error = clean_text(str(result.get("error") or "unknown error"))
        kind = str(result.get("kind") or "Error")
        kind = "MemoryLimit" if kind == "memory" else (kind if _KINDS.match(kind) else "Error")
        return RenderOutcome(False, error=error, kind=kind)
    movie = result.get("movie")
    if not isinstance(movie, str):
        return RenderOutcome(False, error="the render produced no video file", kind="NoOutput")
    outcome = _copy_movie(dir_fd, movie, out_path, limits)
    if outcome.ok:
        outcome.warnings = read_warnings(result.get("warnings"))
    return outcome


def read_warnings(value: object) -> list[str]:
    """The scene's layout warnings as the parent accepts them: strings only, at most
    WARNINGS_MAX of them, each cleaned and at most ~WARNING_MAX_CHARS long; anything else is dropped."""
    if not isinstance(value, list):
        return []
    kept: list[str] = []
    for item in value[: WARNINGS_MAX * 4]:
        text = clean_text(item, WARNING_MAX_CHARS) if isinstance(item, str) else ""
        if text and text not in kept:
            kept.append(text)
        if len(kept) == WARNINGS_MAX:
            break
    return kept


def read_json_object(dir_fd: int, name: str, cap: int) -> dict | None:
    """A JSON object from a regular file below `dir_fd` (no symlink, FIFO or device) of at most
    `cap` bytes; None for anything else. The pod runner's markers use it too."""
    try:
        return _parse_result(_read_capped(dir_fd, name, cap))
    except _TooLarge:
        return None


def _parse_result(raw: bytes | None) -> dict | None:
    if raw is None:
        return None
    try:
        result = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _copy_movie(dir_fd: int, movie: str, out_path: Path, limits: SandboxLimits) -> RenderOutcome:
    """Copy the movie into a new file of our own (so nothing in the sandbox can change it
    afterwards through a link or an open descriptor), then check that it demuxes as MP4."""
    src = _open_regular(dir_fd, movie)
    if src is None:
        return RenderOutcome(False, error="the render produced no video file", kind="NoOutput")
    cap = limits.max_output_mb * 1024 * 1024
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "wb") as dst:
            copied = 0
            while chunk := os.read(src, _COPY_CHUNK):
                copied += len(chunk)
                if copied > cap:
                    raise _TooLarge
                dst.write(chunk)
        problem = demux_problem(tmp)
        if problem:
            tmp.unlink()
            return RenderOutcome(False, error=f"the render produced an unusable video: {problem}", kind="BadOutput")
        os.replace(tmp, out_path)
        return RenderOutcome(True, movie=out_path)
    except _TooLarge:
        tmp.unlink(missing_ok=True)
        return RenderOutcome(False, error="the video exceeds the output size limit", kind="OutputLimit")
    finally:
        os.close(src)


class _TooLarge(Exception):
    pass


def demux_problem(path: Path) -> str | None:
    """None when `path` is an MP4 with a video stream whose packets demux; else what is wrong.
    The container format is given explicitly: libav never guesses from the content."""
    import av

    try:
        with av.open(str(path), format="mp4", mode="r") as container:
            if not container.streams.video:
                return "no video stream"
            for packet in container.demux(container.streams.video[0]):
                if packet.size:
                    return None
            return "no video frames"
    except (av.FFmpegError, OSError, ValueError) as exc:
        return clean_text(f"{type(exc).__name__}", 100)


def _death(wait_status: int | None, log_tail: str) -> RenderOutcome:
    if wait_status is None:
        return RenderOutcome(False, error="the render process ended without a result", kind="Crashed")
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        kind = {signal.SIGXCPU: "CPULimit", signal.SIGXFSZ: "OutputLimit", signal.SIGKILL: "Killed"}.get(sig, "Crashed")
    elif os.WEXITSTATUS(wait_status) == 0:
        return RenderOutcome(False, error="the render process ended without a result", kind="NoOutput")
    else:
        sig, kind = None, "Crashed"
    what = {
        "CPULimit": "exceeded the CPU-time limit",
        "OutputLimit": "exceeded the output file size limit",
        "Killed": "was killed (out of memory?)",
    }.get(kind, f"exited with code {-sig if sig else os.WEXITSTATUS(wait_status)}")
    tail = f": {log_tail}" if log_tail and kind == "Crashed" else ""
    return RenderOutcome(False, error=f"the render process {what}{tail}", kind=kind)

"""A zygote process (`zygote.py`) seen from the parent: one sandbox instance of one job.

Shared by the bubblewrap and none runners; they differ only in the command that starts it.
Its replies are read with a capped line length: the zygote runs beside untrusted code, so a
reply is only believed as far as it goes (which scene ended), never for content.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from videojob.pipeline.sandbox.protocol import Execution

_LINE_MAX = 4096


class ZygoteInstance:
    """Executes prepared scratch directories under `root`, one at a time, in its zygote."""

    def __init__(self, root: Path, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = (),
                 kill_scene_groups: bool = False):
        self.root = root
        # Without a pid namespace (the none runner), scene children are killed by their process
        # group; with one, killing the sandbox kills them all.
        self._kill_scene_groups = kill_scene_groups
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._closed = False
        self._slot: dict | None = None
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=root,
            pass_fds=pass_fds, start_new_session=True,
        )
        threading.Thread(target=self._read, name="sandbox-zygote", daemon=True).start()

    @property
    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def _read(self) -> None:
        stream = self.proc.stdout
        while line := stream.readline(_LINE_MAX):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("ready") is True:
                self.ready.set()
                continue
            with self._lock:
                slot = self._slot
            if slot is None or message.get("id") != slot["id"]:
                continue
            if isinstance(message.get("pid"), int):
                slot["pid"] = message["pid"]
                slot["started"].set()
            if isinstance(message.get("status"), int):
                slot["status"] = message["status"]
                slot["started"].set()
                slot["ended"].set()
        stream.close()
        self.ready.set()
        with self._lock:
            slot = self._slot
        if slot is not None:  # the zygote is gone: this scene will never finish
            slot["started"].set()
            slot["ended"].set()

    def execute(self, scratch: Path, timeout_seconds: float) -> Execution:
        with self._busy:
            if not self.alive:
                return Execution("lost", detail="the sandbox is not running")
            slot = {"id": scratch.name, "started": threading.Event(), "ended": threading.Event()}
            with self._lock:
                self._slot = slot
            try:
                self.proc.stdin.write((json.dumps({"id": scratch.name, "dir": scratch.name}) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return Execution("lost", detail="the sandbox is not running")
            try:
                # A fresh instance may still be importing Manim: that is not the scene's time.
                if not slot["started"].wait(max(120.0, timeout_seconds)):
                    self.close()
                    return Execution("lost", detail="the sandbox did not start in time")
                if not slot["ended"].wait(timeout_seconds):
                    self.close()  # the whole sandbox goes: nothing the scene started survives
                    return Execution("timeout")
            finally:
                with self._lock:
                    self._slot = None
            if "status" not in slot:
                return Execution("lost", detail="the sandbox ended while rendering" if not self._closed else "")
            return Execution("exited", wait_status=slot["status"])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slot = self._slot
        if self._kill_scene_groups and slot and slot.get("pid"):
            try:
                os.killpg(slot["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

"""`videojob render-server`: the render container's side of the spool (see `pod.py` for the layout).

It runs inside the fence, beside the code it renders, and holds nothing worth stealing: no token,
no credentials, only the spool. For each runner instance the worker opens it starts a zygote
(`zygote.py`: imports Manim once, forks one child per scene, sweeps what a scene leaves behind),
executes the scenes the worker submits one at a time, enforces each scene's wall clock by killing
that zygote, and answers with `.done`. A closed instance's zygote is stopped and its files removed.

Zygotes get a private directory of their own (under TMPDIR) holding a link to each scene's
scratch directory, so stopping one never touches the worker's directories.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from videojob.pipeline.sandbox.instance import ZygoteInstance
from videojob.pipeline.sandbox.pod import (
    CLOSED_MARKER,
    DONE,
    INSTANCE_PREFIX,
    SERVER_MARKER,
    SUBMIT,
    read_small_json,
    write_json_atomically,
)
from videojob.pipeline.sandbox.runners import sandbox_environment

log = logging.getLogger(__name__)

MAX_SCENE_TIMEOUT = 4 * 3600.0  # the CRD allows 3600 s; anything above is not the worker asking


class _ServedInstance:
    """The zygote and the scene queue of one worker instance directory."""

    def __init__(self, spool: Path, name: str, private: Path):
        self.spool, self.name = spool, name
        self.home = private / f"z-{uuid.uuid4().hex[:12]}"
        self.taken: set[str] = set()
        self.scenes: queue.Queue[str | None] = queue.Queue()
        self.zygote: ZygoteInstance | None = None
        self._start_zygote()  # Manim's import overlaps the worker's planning and code generation
        self.thread = threading.Thread(target=self._serve, name=f"render-{name}", daemon=True)
        self.thread.start()

    def _start_zygote(self) -> None:
        self.home.mkdir(mode=0o700, exist_ok=True)
        argv = [sys.executable, "-I", "-m", "videojob.pipeline.sandbox.zygote", str(self.home)]
        self.zygote = ZygoteInstance(self.home, argv, sandbox_environment(str(self.home)), kill_scene_groups=True)

    def submit(self, scene: str) -> None:
        if scene not in self.taken:
            self.taken.add(scene)
            self.scenes.put(scene)

    def _serve(self) -> None:
        while (scene := self.scenes.get()) is not None:
            try:
                self._execute(scene)
            except OSError as exc:  # the worker removed the directory meanwhile: nobody is waiting
                log.info("scene %s/%s: %s", self.name, scene, exc)

    def _execute(self, scene: str) -> None:
        scratch = self.spool / self.name / scene
        dir_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            request = read_small_json(dir_fd, SUBMIT) or {}
            timeout = request.get("timeout_seconds")
            timeout = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else 300.0
            if self.zygote is None or not self.zygote.alive:
                self._start_zygote()  # the previous scene timed out and took its zygote along
            link = self.home / scene
            if not link.is_symlink():
                link.symlink_to(scratch)
            execution = self.zygote.execute(link, min(timeout, MAX_SCENE_TIMEOUT))
            write_json_atomically(dir_fd, DONE, {
                "ended": execution.ended, "wait_status": execution.wait_status, "detail": execution.detail,
            })
        finally:
            os.close(dir_fd)
            try:
                (self.home / scene).unlink()
            except OSError:
                pass

    def close(self) -> None:
        self.scenes.put(None)
        if self.zygote is not None:
            self.zygote.close()  # kills it and every scene child; removes only `home`
        self.thread.join(timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)
        # What the scenes wrote is ours to remove; the directories themselves are the worker's.
        instance = self.spool / self.name
        try:
            for entry in os.scandir(instance):
                if entry.is_dir(follow_symlinks=False):
                    for inner in os.scandir(entry.path):
                        path = Path(inner.path)
                        if inner.is_dir(follow_symlinks=False):
                            shutil.rmtree(path, ignore_errors=True)
                        else:
                            path.unlink(missing_ok=True)
        except OSError:
            pass


class SpoolServer:
    """Polls the spool for instances and submitted scenes. `serve_forever()` until `stop()`."""

    def __init__(self, spool: Path, poll_interval: float = 0.05):
        self.spool = Path(spool)
        self.poll_interval = poll_interval
        self.private = Path(tempfile.mkdtemp(prefix="videojob-render-"))
        self.instances: dict[str, _ServedInstance] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.spool, os.O_RDONLY | os.O_DIRECTORY)
        try:
            write_json_atomically(fd, SERVER_MARKER, {"pid": os.getpid()})
        finally:
            os.close(fd)
        self.abandon_unfinished()
        log.info("render server: serving spool %s", self.spool)
        try:
            while not self._stop.wait(self.poll_interval):
                self.scan()
        finally:
            for instance in list(self.instances.values()):
                instance.close()
            self.instances.clear()
            shutil.rmtree(self.private, ignore_errors=True)

    def abandon_unfinished(self) -> None:
        """A restarted server (the container restarts when its process dies, e.g. killed by the
        scene it ran) answers the scenes its predecessor took as lost instead of running them
        again: the worker reports them at once rather than at their timeout."""
        for instance in os.scandir(self.spool):
            if not instance.name.startswith(INSTANCE_PREFIX) or not instance.is_dir(follow_symlinks=False):
                continue
            for scene in os.scandir(instance.path):
                if (scene.is_dir(follow_symlinks=False) and os.path.lexists(os.path.join(scene.path, SUBMIT))
                        and not os.path.lexists(os.path.join(scene.path, DONE))):
                    try:
                        fd = os.open(scene.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                    except OSError:
                        continue
                    try:
                        write_json_atomically(fd, DONE, {"ended": "lost", "wait_status": None,
                                                         "detail": "the render container restarted during this scene"})
                    except OSError:
                        pass
                    finally:
                        os.close(fd)

    def scan(self) -> None:
        present = set()
        for entry in os.scandir(self.spool):
            if not entry.name.startswith(INSTANCE_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            present.add(entry.name)
            closed = os.path.lexists(os.path.join(entry.path, CLOSED_MARKER))
            instance = self.instances.get(entry.name)
            if closed:
                if instance is not None:
                    self.instances.pop(entry.name).close()
                continue
            if instance is None:
                instance = self.instances[entry.name] = _ServedInstance(self.spool, entry.name, self.private)
            for scene in os.scandir(entry.path):
                if (scene.is_dir(follow_symlinks=False) and scene.name not in instance.taken
                        and os.path.lexists(os.path.join(scene.path, SUBMIT))):
                    instance.submit(scene.name)
        for gone in set(self.instances) - present:
            self.instances.pop(gone).close()

"""The local versioned store: numbering, atomic versions, restart reuse, editing input."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from videojob.storage.local import LocalPublisher, LocalVersionStore
from videojob.storage.records import Artifacts


def artifacts(tmp_path: Path, uid: str | None = None, generation: int | None = None, code: str = "A") -> Artifacts:
    video = tmp_path / "video.mp4"
    video.write_bytes(b"not really a video")
    return Artifacts(
        project_id="p", video_id="v", topic="Tópico ünïcode", video=video, scene_videos=[video],
        scene_codes=[f"# scene {code}\n"], combined_code=f"# all {code}\n", duration_seconds=1.0,
        size_bytes=18, sha256="ab", k8s_uid=uid, k8s_generation=generation,
    )


async def publish(publisher: LocalPublisher, arts: Artifacts):
    outcome = await publisher.upload(arts)
    return (await publisher.record(arts, outcome)).record


async def test_versions_count_up_and_are_complete(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    publisher = LocalPublisher(store)
    first = await publish(publisher, artifacts(tmp_path, code="one"))
    second = await publish(publisher, artifacts(tmp_path, code="two"))
    assert (first.version, second.version) == (1, 2)
    assert [r.version for r in store.list_versions("p", "v")] == [1, 2]
    assert second.video_uri == (tmp_path / "store" / "p" / "v" / "v2" / "v.mp4").as_uri()
    previous = store.load_previous("p", "v")
    assert previous.version == 2 and previous.scene_codes == ["# scene two\n"]
    assert store.load_previous("p", "v", 1).combined_code == "# all one\n"


async def test_a_version_being_written_is_invisible(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    publisher = LocalPublisher(store)
    outcome = await publisher.upload(artifacts(tmp_path))
    assert store.list_versions("p", "v") == []  # files written, not yet recorded
    assert store.latest_version("p", "v") is None
    await publisher.record(artifacts(tmp_path), outcome)
    assert store.latest_version("p", "v") == 1


async def test_restarted_run_reuses_its_version(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    publisher = LocalPublisher(store)
    arts = artifacts(tmp_path, uid="uid-1", generation=3)
    # First attempt dies after storing files (no record); the restart finds its reservation.
    interrupted = await publisher.upload(arts)
    restarted = await publish(publisher, arts)
    assert restarted.version == interrupted.version == 1
    # A run that restarts after recording gets the recorded version back, not a new one.
    again = await publish(publisher, arts)
    assert again.version == 1
    assert [r.version for r in store.list_versions("p", "v")] == [1]
    # The next generation is a new version.
    assert (await publish(publisher, artifacts(tmp_path, uid="uid-1", generation=4))).version == 2


def test_concurrent_reservations_never_collide(tmp_path):
    store = LocalVersionStore(tmp_path / "store")
    got: list[int] = []
    lock = threading.Lock()

    def worker():
        for _ in range(20):
            publisher = LocalPublisher(store)
            record = asyncio.run(publish(publisher, artifacts(tmp_path)))
            with lock:
                got.append(record.version)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 41))
    assert [r.version for r in store.list_versions("p", "v")] == list(range(1, 41))


def test_render_cache_drops_least_recently_used_entries(tmp_path):
    import os
    import time as _time

    from videojob.pipeline.render_cache import RenderCache

    cache = RenderCache(tmp_path / "cache", max_bytes=3500)
    for i, key in enumerate(["aa1", "bb2", "cc3"]):
        movie = tmp_path / f"{key}.mp4"
        movie.write_bytes(b"x" * 1000)
        cache.put(key, movie)
        os.utime(cache.path(key), (_time.time() - 100 + i, _time.time() - 100 + i))
    assert cache.get("aa1") is not None  # a hit makes aa1 the most recently used
    movie = tmp_path / "dd4.mp4"
    movie.write_bytes(b"x" * 1000)
    cache.put("dd4", movie)
    assert cache.get("bb2") is None  # the least recently used went first
    assert all(cache.get(k) is not None for k in ("aa1", "cc3", "dd4"))

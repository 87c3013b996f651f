"""The local versioned store: `{root}/{projectId}/{videoId}/v{N}/` (the embedded default).

A version directory appears only complete: files are written into a hidden `.v{N}.partial/`
directory, `record.json` last, then renamed to `v{N}` in one step. Reserving N is an atomic
`mkdir`, so two runs of the same videoId at once get different numbers. A restarted run (same
Kubernetes uid and generation) finds its reservation or its finished version and reuses it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from videojob.storage import version_dir as files
from videojob.storage.records import (
    Artifacts,
    PreviousVersion,
    RecordOutcome,
    UploadOutcome,
    UploadProgressCallback,
    VersionRecord,
    utc_now,
)
from videojob.storage.version_dir import RECORD, RESERVATION


class LocalVersionStore:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    # ----------------------------------------------------------------------------- paths

    def video_dir(self, project_id: str, video_id: str) -> Path:
        return self.root / project_id / video_id

    def version_dir(self, project_id: str, video_id: str, version: int) -> Path:
        return self.video_dir(project_id, video_id) / f"v{version}"

    def _numbers(self, base: Path) -> dict[int, Path]:
        return files.numbers(base)

    # --------------------------------------------------------------------------- reading

    def list_versions(self, project_id: str, video_id: str) -> list[VersionRecord]:
        records = []
        for number, path in sorted(self._numbers(self.video_dir(project_id, video_id)).items()):
            record = path / RECORD
            if not path.name.startswith(".") and record.is_file():
                records.append(VersionRecord.model_validate_json(record.read_text()))
        return records

    def latest_version(self, project_id: str, video_id: str) -> int | None:
        versions = self.list_versions(project_id, video_id)
        return versions[-1].version if versions else None

    def load_previous(self, project_id: str, video_id: str, version: int | None = None) -> PreviousVersion | None:
        if version is None:
            version = self.latest_version(project_id, video_id)
            if version is None:
                return None
        path = self.version_dir(project_id, video_id, version)
        if not (path / RECORD).is_file():
            return None
        scenes_dir = path / "scenes"
        scene_codes = [p.read_text(encoding="utf-8") for p in sorted(scenes_dir.glob("scene_*.py"))]
        combined = (path / f"{video_id}.py").read_text(encoding="utf-8")
        plan_file = path / "plan.json"
        plan = json.loads(plan_file.read_text()) if plan_file.is_file() else None
        return PreviousVersion(version, scene_codes or [combined], combined, plan)

    # --------------------------------------------------------------------------- writing

    @staticmethod
    def _is_own(path: Path, artifacts: Artifacts) -> bool:
        """`path` holds this run's reservation or record (same Kubernetes uid and generation)."""
        if not artifacts.k8s_uid:
            return False
        for name in (RECORD, RESERVATION):
            meta = path / name
            if meta.is_file():
                data = json.loads(meta.read_text())
                return data.get("k8s_uid") == artifacts.k8s_uid and data.get("k8s_generation") == artifacts.k8s_generation
        return False

    def find_own(self, artifacts: Artifacts) -> tuple[int, Path] | None:
        """The version a restarted run already reserved or published, if any."""
        for number, path in self._numbers(self.video_dir(artifacts.project_id, artifacts.video_id)).items():
            if self._is_own(path, artifacts):
                return number, path
        return None

    def highest_taken(self, artifacts: Artifacts) -> int:
        """The highest version number other runs hold here (published or reserved), 0 for none."""
        numbers = self._numbers(self.video_dir(artifacts.project_id, artifacts.video_id))
        return max((n for n, path in numbers.items() if not self._is_own(path, artifacts)), default=0)

    def reserve(self, artifacts: Artifacts, version: int | None = None) -> tuple[int, Path]:
        """Reserve a version number and return its directory: the partial one, or the final one
        when a restarted run finds its version already published.

        Without `version` the store picks the next free number (or the run's own, on restart).
        With `version` (chosen by the authoritative store, DynamoDB) exactly that number is used:
        a leftover local directory with it is stale and is replaced, and an own reservation under
        another number is dropped."""
        own = self.find_own(artifacts)
        if own and (version is None or own[0] == version):
            return own
        if own and own[1].name.startswith("."):
            shutil.rmtree(own[1], ignore_errors=True)
        base = self.video_dir(artifacts.project_id, artifacts.video_id)
        number = version or (max(self._numbers(base), default=0) + 1)
        owner = {"k8s_uid": artifacts.k8s_uid, "k8s_generation": artifacts.k8s_generation}
        return files.reserve_number(base, number, exact=version is not None, owner=owner)

    def write_files(self, artifacts: Artifacts, partial: Path) -> None:
        files.write_files(
            partial, artifacts.video_id, artifacts.video, artifacts.combined_code, artifacts.scene_codes,
            artifacts.scene_videos, artifacts.subtitles, artifacts.plan,
        )

    def commit(self, partial: Path, record: VersionRecord) -> Path:
        """Write record.json and make the version visible under its final name."""
        return files.publish(partial, record.version, record.model_dump_json(indent=2))


def _vtt(artifacts: Artifacts) -> Path | None:
    return next((p for p in artifacts.subtitles if p.suffix == ".vtt"), None)


class LocalPublisher:
    """The Publisher for runs without AWS: versions live only in the local store."""

    def __init__(self, store: LocalVersionStore):
        self.store = store

    async def previous_version(self, project_id: str, video_id: str, version: int | None = None) -> PreviousVersion | None:
        return await asyncio.to_thread(self.store.load_previous, project_id, video_id, version)

    async def upload(self, artifacts: Artifacts, on_progress: UploadProgressCallback | None = None) -> UploadOutcome:
        return await asyncio.to_thread(self.store_version, artifacts)

    def store_version(self, artifacts: Artifacts, version: int | None = None) -> UploadOutcome:
        """Blocking: reserve the version (`version`, or the next free one) and write its files;
        a restarted run whose version is already published gets that one back, untouched."""
        number, path = self.store.reserve(artifacts, version)
        already = None
        if path.name.startswith("."):
            self.store.write_files(artifacts, path)
        else:
            already = VersionRecord.model_validate_json((path / RECORD).read_text())
        final = self.store.version_dir(artifacts.project_id, artifacts.video_id, number)
        return UploadOutcome(
            version=number,
            video_uri=(final / f"{artifacts.video_id}.mp4").as_uri(),
            code_uri=(final / f"{artifacts.video_id}.py").as_uri(),
            subtitles_uri=(final / f"{artifacts.video_id}.vtt").as_uri() if _vtt(artifacts) else None,
            local_dir=path,
            already_recorded=already,
        )

    async def record(self, artifacts: Artifacts, upload: UploadOutcome) -> RecordOutcome:
        if upload.already_recorded:
            return RecordOutcome(record=upload.already_recorded)
        record = build_record(artifacts, upload)
        await asyncio.to_thread(self.store.commit, upload.local_dir, record)
        return RecordOutcome(record=record)


def build_record(artifacts: Artifacts, upload: UploadOutcome, status: str = "completed") -> VersionRecord:
    return VersionRecord(
        video_key=artifacts.video_key,
        version=upload.version,
        project_id=artifacts.project_id,
        video_id=artifacts.video_id,
        topic=artifacts.topic,
        status=status,
        video_uri=upload.video_uri,
        code_uri=upload.code_uri,
        subtitles_uri=upload.subtitles_uri,
        size_bytes=artifacts.size_bytes,
        duration_seconds=round(artifacts.duration_seconds, 3),
        scene_count=len(artifacts.scene_codes),
        sha256=artifacts.sha256,
        created_at=utc_now(),
        k8s_uid=artifacts.k8s_uid,
        k8s_generation=artifacts.k8s_generation,
        parent_version=artifacts.parent_version,
    )

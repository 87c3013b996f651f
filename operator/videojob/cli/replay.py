"""`videojob run` on an unchanged VideoJob: replay the last identical run instead of redoing it.

Like make or ninja, a run whose scenes all came from the render cache leaves, beside the cache, a
replay record keyed by a fingerprint of everything that decides its result (cli/fingerprint.py): the
manifest's bytes, the command-line options, every `VIDEOJOB_*` and `AWS_*` variable, the output
directory, videojob's own files and the installed distributions (Manim and PyAV name the cache
entries, PyYAML and pydantic write the status and record). The record holds what that run wrote
and printed. A later run with the same fingerprint whose cached files are all still there, byte
for byte (sha256), writes the next version with the same files, the same `record.json` and the
same stage lines and status, times and version number aside: without importing pydantic, the
API models, the pipeline or the render service. Anything else (no record, a changed manifest or
setting, a cache entry gone or altered) takes the full path, which validates the manifest and
reports problems by field, and records again.

Only plain runs are replayed: text logs, no metrics file; a local store (no AWS), no model, no
narration, no Kubernetes uid (see `replayable_job`). A progress bar is drawn at its last frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from videojob.cli.fingerprint import FORMAT, fingerprint

KEEP = 64  # replay records kept per output directory (most recently written)
TIME_KEYS = frozenset({"startedAt", "finishedAt", "startTime", "completionTime", "lastHeartbeatTime",
                       "lastTransitionTime", "created_at"})


def replayable_invocation(args) -> bool:
    """Whether this invocation prints only what a replay can print: stage lines or the progress
    bar's last frame, the status."""
    return getattr(args, "metrics_file", None) is None and getattr(args, "log_format", "text") == "text"


class Replay:
    """A replay record of one output directory, by fingerprint."""

    def __init__(self, output_dir: Path, digest: str, manifest: bytes, manifest_path: Path):
        self.output_dir = output_dir
        self.digest = digest
        self.manifest = manifest
        self.manifest_path = manifest_path
        self.path = output_dir / ".cache" / "runs" / f"{digest}.json"

    @classmethod
    def of(cls, args, output_dir: Path) -> "Replay | None":
        """The fingerprint of this invocation, or None when it cannot be replayed (or the manifest
        cannot be read: the full path reports that)."""
        if not replayable_invocation(args):
            return None
        try:
            manifest = Path(args.manifest).read_bytes()
        except OSError:
            return None
        return cls(output_dir, fingerprint(args, manifest, output_dir), manifest, Path(args.manifest))

    # ------------------------------------------------------------------------------ replay

    def run(self) -> int | None:
        """Replay the recorded run: exit code 0 after writing what it wrote; None when there is
        nothing to replay (the caller runs the pipeline)."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        try:
            if not well_formed(record) or not self._inputs_intact(record):
                return None
        except (OSError, LookupError, TypeError, AttributeError):
            return None  # unreadable files or a damaged record: the full path decides
        import yaml  # what the full path prints the status with, so the text is the same

        if record["bar"]:
            from videojob.cli.progress import ProgressDisplay
        published = self._publish(record)
        if published is None:
            return None
        number, uri, now = published
        sys.stderr.write(filled(record["stderr"], number, uri, now))
        if record["bar"]:
            name, *frame = record["bar"]
            with ProgressDisplay(name, live=False) as bar:
                bar.show(*frame)
        status = filled(record["status"], number, uri, now)
        sys.stdout.write(yaml.safe_dump({"status": status}, sort_keys=False, allow_unicode=True))
        return 0

    def _inputs_intact(self, record: dict) -> bool:
        """Every cached file the recorded run read is there with the same bytes (and a sidecar
        it found absent is still absent); refreshes their place in the cache's LRU order as a
        cache hit does."""
        paths = [*record["inputs"], *record["touch"], record["video"], *record["scene_videos"], record["video_dir"]]
        if not all(_inside(rel) for rel in paths):
            return False
        for rel, expected in record["inputs"].items():
            if _sha256(self.output_dir / rel) != expected:
                return False
        for rel in record["touch"]:
            os.utime(self.output_dir / rel)
        return True

    def _publish(self, record: dict) -> tuple[int, str, str] | None:
        """The next version of the video with the recorded files: (number, its URI, the time)."""
        from videojob.storage import version_dir as files

        (self.output_dir / ".work").mkdir(parents=True, exist_ok=True)
        base = self.output_dir / record["video_dir"]
        number, partial = files.reserve_number(base, max(files.numbers(base), default=0) + 1, exact=False,
                                               owner={"k8s_uid": None, "k8s_generation": None})
        try:
            uri = (base / f"v{number}").as_uri()
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            files.write_files(
                partial, record["video_id"], self.output_dir / record["video"], record["combined_code"],
                record["scene_codes"], [self.output_dir / p for p in record["scene_videos"]], (), record["plan"],
            )
            text = json.dumps(filled(record["record"], number, uri, now), indent=2, ensure_ascii=False)
            files.publish(partial, number, text)
        except (OSError, LookupError, TypeError):
            shutil.rmtree(partial, ignore_errors=True)  # the full path writes it again, or says why not
            return None
        except BaseException:  # interrupted: no reservation left behind
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return number, uri, now

    # ---------------------------------------------------------------------------- remember

    def observe(self, job, result, all_cached: bool, frame: tuple[int, str, str] | None = None,
                above_bar: bool = False) -> None:
        """The run this invocation made instead: `all_cached` when every scene was in the render
        cache before it started; `frame`: the progress bar's last (percent, stage, detail);
        `above_bar`: something was printed above the bar (a replay would not print it)."""
        self.finished = (job, result, all_cached and not above_bar)
        self.frame = frame

    def remember(self, stdout: str, stderr: str) -> bool:
        """Keep a replay record of the observed run when a replay would give exactly its result
        (`stdout`, `stderr`: all it printed); True when one was written."""
        job, result, all_cached = getattr(self, "finished", (None, None, False))
        if not (all_cached and result.succeeded and replayable_job(job, result)) or self._manifest_changed():
            return False
        state = result.state
        cache = self.output_dir / ".cache" / "renders"
        videos = [Path(s.video_path) for s in state.scenes] + [Path(state.video_path)]
        version = state.record.version
        uri = (self.output_dir / state.project_id / state.video_id / f"v{version}").as_uri()
        if not all(v.is_relative_to(cache) for v in videos) or not state.record.video_uri.startswith(uri + "/"):
            return False
        import yaml

        status = result.tracker.as_dict()
        if stdout != yaml.safe_dump({"status": status}, sort_keys=False, allow_unicode=True):
            return False  # something besides the status went to stdout
        templates = (template(status, version, uri), template(state.record.model_dump(mode="json"), version, uri),
                     template(stderr, version, uri))
        if any(leftover(t, version) for t in templates):
            return False  # the version shows up where a replay would not change it: do not guess
        status_t, record_t, stderr_t = templates
        record_text = state.record.model_dump_json(indent=2)
        if json.dumps(filled(record_t, version, uri, state.record.created_at), indent=2, ensure_ascii=False) != record_text:
            return False  # pydantic would write it otherwise: a replay must write the same bytes
        if filled(status_t, version, uri, "T") != with_times(status, "T"):
            return False
        self._write({
            "format": FORMAT,
            "video_dir": f"{state.project_id}/{state.video_id}",
            "video_id": state.video_id,
            "video": self._rel(videos[-1]),
            "scene_videos": [self._rel(v) for v in videos[:-1]],
            "scene_codes": [s.code or "" for s in state.scenes],
            "combined_code": state.combined_code or "",
            "plan": state.plan,
            "inputs": self._inputs(videos),
            "touch": [self._rel(v) for v in videos],
            "record": record_t,
            "status": status_t,
            "stderr": stderr_t,
            "bar": [job.metadata.name, *self.frame] if self.frame else None,
        })
        return True

    def _manifest_changed(self) -> bool:
        try:
            return self.manifest_path.read_bytes() != self.manifest
        except OSError:
            return True

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.output_dir))

    def _inputs(self, videos: list[Path]) -> dict[str, str | None]:
        """sha256 of each cached video and of its sidecars (None: absent), by relative path."""
        return {self._rel(path): _sha256(path) for video in videos
                for path in (video, video.with_suffix(".warnings.json"), video.with_suffix(".facts.json"))}

    def _write(self, entry: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)
        records = []
        for record in self.path.parent.glob("*.json"):
            try:
                records.append((record.stat().st_mtime_ns, record))
            except FileNotFoundError:  # another run pruned it
                continue
        for _, old in sorted(records)[:-KEEP]:
            old.unlink(missing_ok=True)


class Transcript:
    """A text stream that passes everything on and keeps a copy: what a run printed."""

    def __init__(self, stream):
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def text(self) -> str:
        return "".join(self.parts)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextmanager
def transcribed() -> Iterator[tuple[Transcript, Transcript]]:
    """sys.stdout and sys.stderr kept in transcripts (and passed on) while the block runs."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Transcript(out), Transcript(err)
    try:
        yield sys.stdout, sys.stderr
    finally:
        sys.stdout, sys.stderr = out, err


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _inside(rel: object) -> bool:
    """A relative path in a record that stays inside the output directory."""
    return isinstance(rel, str) and not os.path.isabs(rel) and ".." not in Path(rel).parts


_FIELDS = {"format": int, "video_dir": str, "video_id": str, "video": str, "scene_videos": list, "scene_codes": list,
           "combined_code": str, "plan": (dict, type(None)), "inputs": dict, "touch": list, "record": dict,
           "status": dict, "stderr": (str, dict), "bar": (list, type(None))}


_VIDEO_DIR = re.compile(r"^[a-z0-9-]{1,63}/([a-z0-9-]{1,63})$")  # {projectId}/{videoId}, both slugs


def well_formed(record: Any) -> bool:
    """A replay record of this format with every field (a damaged one is ignored, never half-used)."""
    if not (isinstance(record, dict) and record.get("format") == FORMAT
            and all(isinstance(record.get(name), kind) for name, kind in _FIELDS.items())):
        return False
    names = _VIDEO_DIR.match(record["video_dir"])
    return names is not None and names.group(1) == record["video_id"]


def replayable_job(job, result) -> bool:
    """A job whose cached run a replay reproduces: storyboard or code, no model, no voice, no
    Kubernetes identity (a restarted run gets its own version back), stored locally only."""
    from videojob.pipeline.narrate import narrated
    from videojob.storage.aws_config import load_aws_config

    spec, state = job.spec, result.state
    return (
        spec.source in ("code", "storyboard") and spec.editing is None and not (spec.llm and spec.llm.model)
        and not narrated(job) and job.metadata.uid is None and result.status.sandbox is None
        and not load_aws_config().enabled and state.record is not None and state.record.parent_version is None
        and state.record_error is None and not state.subtitle_paths
    )


# ------------------------------------------------------------------------------------ templates
# A recorded value with the parts that differ between two runs of the same job marked:
# {"$": "time"}, {"$": "version"} and {"$": "text", "parts": [...]} (a string with the version
# number or the version directory's URI in it). Status and record keys never start with "$".


def template(value: Any, version: int, uri: str, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: template(v, version, uri, k) for k, v in value.items()}
    if isinstance(value, list):
        return [template(v, version, uri) for v in value]
    if key in TIME_KEYS and isinstance(value, str):
        return {"$": "time"}
    if key == "version" and value == version:
        return {"$": "version"}
    if isinstance(value, str):
        return _text_template(value, version, uri)
    return value


def _text_template(text: str, version: int, uri: str) -> str | dict:
    parts: list[Any] = []
    lead = f"version {version} "
    if text.startswith(lead):  # "version N ready: URI", "version N stored"
        parts += ["version ", {"$": "version"}, " "]
        text = text[len(lead):]
    pieces = text.split(uri + "/")
    for i, piece in enumerate(pieces):
        if i:
            parts += [{"$": "uri"}, "/"]
        parts.append(piece)
    if len(parts) == 1:
        return text
    return {"$": "text", "parts": [p for p in parts if p != ""]}


def leftover(value: Any, version: int) -> bool:
    """Whether a template still holds the version number in plain text."""
    if isinstance(value, dict):
        return any(leftover(v, version) for v in (value["parts"] if value.get("$") == "text" else value.values()))
    if isinstance(value, list):
        return any(leftover(v, version) for v in value)
    if isinstance(value, str):
        return f"/v{version}/" in value or re.search(rf"\bversion {version}\b", value) is not None
    return False


def filled(value: Any, version: int, uri: str, now: str) -> Any:
    if isinstance(value, dict):
        marker = value.get("$")
        if marker == "time":
            return now
        if marker == "version":
            return version
        if marker == "uri":
            return uri
        if marker == "text":
            return "".join(str(filled(p, version, uri, now)) for p in value["parts"])
        return {k: filled(v, version, uri, now) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, version, uri, now) for v in value]
    return value


def with_times(value: Any, now: str, key: str | None = None) -> Any:
    """`value` with every time field set to `now` (what `filled` gives them)."""
    if isinstance(value, dict):
        return {k: with_times(v, now, k) for k, v in value.items()}
    if isinstance(value, list):
        return [with_times(v, now) for v in value]
    return now if key in TIME_KEYS and isinstance(value, str) else value

"""A disk cache of model answers keyed by (model, prompt hash).

A resumed run (operator restarted, Job pod rescheduled) or a repeated one sends the same prompts
again; answering them from disk means nobody pays twice for the same tokens, and the render cache
downstream then hits as well. Only successful answers are stored. Entries are small JSON files
written atomically, so concurrent runs sharing the directory never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Sequence

from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict

log = logging.getLogger(__name__)

# Bump when the key recipe or the stored format changes: old entries are then simply not found.
_FORMAT = "videojob-llm-cache-1"


def prompt_key(model: str, messages: Sequence[BaseMessage], *, tools: Sequence[str] = (), params: dict[str, Any] | None = None) -> str:
    """The cache key of one model call: the model, its sampling parameters, the offered tools and
    every message (type, content, tool calls and tool results)."""
    payload = {
        "format": _FORMAT,
        "model": model,
        "params": params or {},
        "tools": sorted(tools),
        "messages": [
            {
                "type": m.type,
                "content": m.content,
                "tool_calls": [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in getattr(m, "tool_calls", None) or []],
                "tool_call_id": getattr(m, "tool_call_id", None),
            }
            for m in messages
        ],
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers on disk under `root/<2 hex>/<key>.json`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> AIMessage | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            message = messages_from_dict([data["message"]])[0]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable LLM cache entry %s: %s", path.name, exc)
            return None
        return message if isinstance(message, AIMessage) else None

    def put(self, key: str, message: AIMessage) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps({"format": _FORMAT, "message": message_to_dict(message)}, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only disk costs money later, not the run now
            log.warning("could not store an LLM answer in the cache: %s", exc)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0

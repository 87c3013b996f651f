"""resourceVersions as kube-apiserver hands them out: opaque strings, plus the watch window.

A client may only compare two resourceVersions for equality, pass one back as a precondition
(`metadata.resourceVersion` in a write) or as the starting point of a list or watch. Most
servers use etcd's revision, a number that grows, and code that parses or orders it works on
most clusters until it meets one that does not (an aggregated API server, a non-etcd storage,
kcp). So the emulator's versions are tokens that are not numbers and do not sort in write order:
anything that orders them fails here.

Behind the tokens the emulator keeps its write sequence (etcd's revision), which is what a
watch needs:

- a watch from a resourceVersion replays the events after it from a window of recent events
  per resource (the API server's watch cache), then streams new ones;
- a watch from a version older than the window (or from before a compaction, `compact()`),
  or from a token this server never issued, gets `410 Gone` ("too old resource version") as an
  ERROR event, as from kube-apiserver: the client must list again;
- `BOOKMARK` events carry the current version to watches that asked for them
  (`allowWatchBookmarks`), so a client of a quiet resource can resume after a compaction.

Tests that need the order of writes ask the server (`order`), as a test of a real cluster
would read etcd's revisions: never the operator.
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import os
from typing import Any

WATCH_WINDOW = 500  # events kept per resource for watches that resume (kube's watch cache)
END_OF_WATCH = "_END"  # an internal bus item: open watches end (see KubeAPIServer.drop_watches)


class ResourceVersions:
    """Issues opaque resourceVersion tokens in write order, and knows that order."""

    def __init__(self) -> None:
        self.seq = 0  # the last write's sequence number (etcd's revision)
        self._salt = os.urandom(8)  # another server's tokens mean nothing here
        self._order: dict[str, int] = {}
        self._token_of: dict[int, str] = {}

    def next(self) -> str:
        """The token of a new write."""
        self.seq += 1
        return self.token(self.seq)

    def current(self) -> str:
        """The token of the latest write (a list's `metadata.resourceVersion`)."""
        return self.token(self.seq)

    def token(self, seq: int) -> str:
        if seq not in self._token_of:
            digest = hashlib.blake2b(self._salt + seq.to_bytes(8, "big"), digest_size=8).digest()
            token = base64.b32encode(digest).decode().rstrip("=").lower()
            if token.isdigit() or token in self._order:  # never a number, never ambiguous
                token = f"x{token}{seq}"
            self._token_of[seq] = token
            self._order[token] = seq
        return self._token_of[seq]

    def order(self, token: Any) -> int | None:
        """The write sequence of a token this server issued (None: not one of ours)."""
        return self._order.get(str(token)) if token is not None else None


class WatchWindow:
    """Recent events of each resource, for watches that resume from a resourceVersion."""

    def __init__(self, size: int = WATCH_WINDOW) -> None:
        self.size = size
        self._events: dict[Any, collections.deque] = {}
        self._floor: dict[Any, int] = {}  # per resource: versions up to this are too old
        self._compacted = 0  # versions up to this are too old everywhere
        self.expired = 0  # watches answered 410 Gone (for tests)

    def record(self, resource: Any, seq: int, event: dict[str, Any]) -> None:
        events = self._events.setdefault(resource, collections.deque())
        events.append((seq, event))
        while len(events) > self.size:
            dropped, _ = events.popleft()
            self._floor[resource] = dropped

    def compact(self, seq: int) -> None:
        """Forget every event up to `seq` (etcd's compaction): watches from before it get 410."""
        self._compacted = seq
        for events in self._events.values():
            while events and events[0][0] <= seq:
                events.popleft()

    def since(self, resource: Any, seq: int | None) -> list[dict[str, Any]] | None:
        """The events after `seq`, oldest first; None when `seq` is too old (410 Gone)."""
        if seq is None or seq < max(self._floor.get(resource, 0), self._compacted):
            self.expired += 1
            return None
        return [event for event_seq, event in self._events.get(resource, ()) if event_seq > seq]


def gone_event(token: str) -> dict[str, Any]:
    """The ERROR event kube-apiserver sends on a watch from a version it no longer has."""
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
        "message": f"too old resource version: {token}",
    }}


def bookmark_event(api_version: str, kind: str, token: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"apiVersion": api_version, "kind": kind,
                                           "metadata": {"resourceVersion": token}}}


class VersionedWatches:
    """The watch side of `KubeAPIServer` (a mixin over KMock's emulator): watches served from a
    resourceVersion, compaction, bookmarks. Uses the server's `versions`, `window`, `_lock`,
    `_buses`, `objects`, `_info` and `_selected`."""

    async def _serve_watch(self, request: Any) -> Any:
        # KMock subscribes to its event bus only after streaming the existing objects, so an
        # event caused by a client reacting to those (Kopf adding its finalizer) could be lost.
        # Mark the bus and take the snapshot (or the events since ?resourceVersion=) under one lock.
        yield b""
        bus = self._buses[request.resource]
        since = str(request.params.get("resourceVersion") or "")
        bookmarks = str(request.params.get("allowWatchBookmarks", "")).lower() in ("true", "1")
        async with self._lock:
            mark = await bus.mark()
            if since in ("", "0"):  # "any version": the objects as they are, as ADDED events
                replay = [
                    {"type": "ADDED", "object": copy.deepcopy(obj.raw)}
                    for (resource, _, _), obj in self.objects.items()
                    if resource == request.resource and not obj.deleted
                ]
            else:
                replay = self.window.since(request.resource, self.versions.order(since))
        try:
            if replay is None:
                yield gone_event(since)
                return
            for event in replay:
                if self._selected(request, event["object"]):
                    yield copy.deepcopy(event)
            async for event in bus.stream(since=mark):
                if event.get("type") == "BOOKMARK":
                    if bookmarks:
                        yield event
                elif event.get("type") == END_OF_WATCH:
                    return
                elif self._selected(request, event.get("object", {})):
                    yield event
        finally:
            await bus.unmark(mark)

    async def compact(self) -> None:
        """etcd's compaction: every version until now is too old to watch from (410 Gone)."""
        async with self._lock:
            self.window.compact(self.versions.seq)

    async def bookmark(self) -> None:
        """A BOOKMARK event with the current resourceVersion on every watch that allows them."""
        async with self._lock:
            for resource in list(self._buses):
                info = self._info(resource)
                group, version = resource.group, resource.version
                api_version = f"{group}/{version}" if group else version
                await self._buses[resource].put(bookmark_event(api_version, info.kind if info else "", self.versions.current()))

    async def drop_watches(self) -> None:
        """End every open watch (the clients reconnect from the last version they saw)."""
        async with self._lock:
            for bus in list(self._buses.values()):
                await bus.put({"type": END_OF_WATCH})

    def order(self, token: Any) -> int | None:
        """The write order behind a resourceVersion this server issued (for tests only)."""
        return self.versions.order(token)

"""The embedded default's channel layer: in-memory, plus a spool directory that
carries ``group_send`` between the processes of one machine.

Without Redis, ``make run`` starts web, worker and runner as separate processes.
Channels' ``InMemoryChannelLayer`` only reaches consumers of its own process, so a
status written by the worker or a message received by the runner never woke the
web process's pages; they showed up on the pages' slow fallback re-read. Here each
``group_send`` is also written as one small file (write to a temporary name, then
an atomic rename) and every process that has consumers (it called ``group_add``:
only the web process) reads new files every ``poll_seconds`` and delivers them to
its own groups. A file is ~200 bytes and costs one create + rename for the writer;
an idle reader lists one small directory ten times a second. Files older than
``retention_seconds`` are removed by the readers.

Only hints travel this way (``instances.events``): the database stays the truth,
so a file lost to a crash only delays a page until its fallback re-read."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from channels.layers import InMemoryChannelLayer

log = logging.getLogger(__name__)

SUFFIX = ".json"


class SpoolChannelLayer(InMemoryChannelLayer):
    """``InMemoryChannelLayer`` whose group messages also reach the other processes
    sharing ``spool_dir`` (same machine, same ``RELAY_VAR_DIR``)."""

    def __init__(
        self,
        spool_dir: str = "",
        poll_seconds: float = 0.1,
        retention_seconds: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not spool_dir:
            raise ValueError("SpoolChannelLayer needs a spool_dir")
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.poll_seconds = poll_seconds
        self.retention_seconds = retention_seconds
        self._counter = itertools.count()
        self._reader: asyncio.Task[None] | None = None

    # --- Writing ---------------------------------------------------------------------

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        # Spool first: a local delivery that fails (a group whose consumers live on
        # another event loop of this process) must not keep other processes uninformed.
        try:
            self.spool(group, message)
        except (OSError, TypeError, ValueError):
            log.warning("could not spool a message for %s", group, exc_info=True)
        await super().group_send(group, message)

    def spool(self, group: str, message: dict[str, Any]) -> Path:
        """Write one group message for the other processes; returns its file."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter)}"
        data = json.dumps({"group": group, "message": message}, separators=(",", ":")).encode()
        tmp = self.spool_dir / f".{name}.tmp"
        final = self.spool_dir / f"{name}{SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, final)  # readers never see a half-written file
        return final

    # --- Reading ---------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        loop = asyncio.get_running_loop()
        if self._reader is None or self._reader.done() or self._reader.get_loop() is not loop:
            # Messages spooled before this moment are history: never replayed.
            self._reader = loop.create_task(self._tail(set(self._names())))

    async def _tail(self, seen: set[str]) -> None:
        me = f"-{os.getpid()}-"
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                names = self._names()
            except OSError:
                continue
            for name in sorted(set(names) - seen):
                seen.add(name)
                if me in name:
                    continue  # delivered locally when it was sent
                payload = self._read(name)
                if payload is not None:
                    with contextlib.suppress(Exception):
                        await InMemoryChannelLayer.group_send(self, payload["group"], payload["message"])
            seen.intersection_update(names)
            self._prune(names)

    def _names(self) -> list[str]:
        return [n for n in os.listdir(self.spool_dir) if n.endswith(SUFFIX)]

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            payload = json.loads((self.spool_dir / name).read_bytes())
        except (OSError, ValueError):
            return None  # pruned meanwhile, or not ours
        if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
            return None
        return payload

    def _prune(self, names: list[str]) -> None:
        cutoff = time.time_ns() - int(self.retention_seconds * 1e9)
        for name in names:
            stamp = name.split("-", 1)[0]
            if stamp.isdigit() and int(stamp) < cutoff:
                with contextlib.suppress(OSError):
                    os.unlink(self.spool_dir / name)

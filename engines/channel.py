"""The live-session command channel: web and worker processes ask the process that
holds an instance's session (a runner, or a ``waweb`` child process) to do something,
and wait for its answer.

The channel is a table (``engines.models.SessionCommand``), so it works wherever the
product runs: PostgreSQL with Redis, and the embedded default (SQLite, separate
processes, no Redis). With ``REDIS_URL`` set, Redis only carries wake-ups (a new
command for an instance, an answer for a caller); without it both sides poll the row
with a short backoff. A lost wake-up only costs a poll.

Fencing: a caller addresses its command to the lease epoch it read. Only the
session holding that epoch claims it (the claim re-checks the lease in the same
UPDATE), and a session at a later epoch refuses it, so a command can never run in a
session that lost its lease. A caller learns at once, without waiting for a timeout,
when nobody would answer: no live lease, or no listener (``CommandListener``) with a
fresh heartbeat at the lease's epoch (the session is starting, restarting or backing
off). Every failure is a ``TransportError``, which the wire layer answers with
GREEN-API's error body (``instances.http.EngineFailed``: 503 to retry, 400 permanent).

Call ``call`` outside a transaction: the session process must see the row.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from engines.contract import CallError, GroupRefused, TransportError
from engines.models import CommandListener, CommandState, SessionCommand
from instances.dbclock import db_in, db_now
from instances.models import SessionLease

log = logging.getLogger(__name__)

WAKE_PREFIX = "relay:engine-cmd:"
REPLY_PREFIX = "relay:engine-reply:"
# Without a Redis wake-up, a listener looks for new commands this often...
LISTENER_POLL_SECONDS = 0.1
# ...and a caller re-reads its row with this backoff.
CALLER_POLL_MIN_SECONDS = 0.01
CALLER_POLL_MAX_SECONDS = 0.2
# A listener refreshes its heartbeat this often while it serves.
HEARTBEAT_SECONDS = 2.0
# Answered or abandoned rows older than this are pruned by the listener.
PRUNE_AFTER = timedelta(minutes=10)

# handler(name, args) -> JSON-able result; raises TransportError to answer an error.
Handler = Callable[[str, dict[str, Any]], Any]


class NoSessionOwner(TransportError):
    """Nobody holds the instance's session now: no runner leases it, or its session
    process is starting, restarting or backing off. Transient (a 503): retry."""

    def __init__(self, instance_id: int, why: str) -> None:
        super().__init__(f"the session of instance {instance_id} is not running ({why}); retry later")
        self.instance_id = instance_id


class StaleEpoch(TransportError):
    """The command was addressed to a lease epoch the session no longer holds (it
    was taken over meanwhile). Transient: a new call addresses the new epoch."""


class CommandTimeout(TransportError):
    """The session did not answer within the timeout. Transient; when the session
    had already taken the command it may still complete it (``taken``)."""

    def __init__(self, message: str, *, taken: bool) -> None:
        super().__init__(message)
        self.taken = taken


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _publish(channel: str) -> None:
    if not settings.REDIS_URL:
        return
    try:
        _redis().publish(channel, b"1")
    except redis.RedisError:
        log.warning("engine channel: could not publish %s", channel, exc_info=True)


@contextmanager
def _subscription(channel: str) -> Iterator[Any]:
    """A Redis subscription to ``channel``, or None without Redis (or when Redis is
    away: the waiter then polls the database)."""
    if not settings.REDIS_URL:
        yield None
        return
    pubsub = None
    try:
        pubsub = _redis().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(channel)
    except redis.RedisError:
        log.warning("engine channel: no subscription to %s; polling", channel, exc_info=True)
        pubsub = None
    try:
        yield pubsub
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass


def _wait_message(pubsub: Any, timeout: float) -> None:
    """Block until a message arrives on ``pubsub`` or ``timeout`` passes."""
    if pubsub is None:
        time.sleep(timeout)
        return
    try:
        pubsub.get_message(timeout=timeout)
    except redis.RedisError:
        time.sleep(min(timeout, CALLER_POLL_MAX_SECONDS))


# --- Errors on the wire of the channel ------------------------------------------------


def encode_error(exc: TransportError) -> dict[str, Any]:
    kind = (
        "GroupRefused" if isinstance(exc, GroupRefused) else "CallError" if isinstance(exc, CallError) else ""
    )
    return {
        "type": kind,
        "message": str(exc),
        "permanent": exc.permanent,
        "reason": getattr(exc, "reason", ""),
    }


def decode_error(data: dict[str, Any]) -> TransportError:
    message = str(data.get("message", "the session failed"))
    if data.get("type") == "GroupRefused":
        return GroupRefused(str(data.get("reason", "")), message)
    if data.get("type") == "CallError":
        return CallError(message)
    return TransportError(message, permanent=bool(data.get("permanent", False)))


# --- The caller's side ----------------------------------------------------------------


def owner_epoch(instance_id: int) -> int:
    """The epoch of the session that would answer a command for the instance now;
    ``NoSessionOwner`` when nobody would."""
    lease = (
        SessionLease.objects.filter(instance_id=instance_id, expires_at__gte=db_now())
        .exclude(runner_id="")
        .values_list("epoch", flat=True)
        .first()
    )
    if lease is None:
        raise NoSessionOwner(instance_id, "no runner holds it")
    fresh = CommandListener.objects.filter(
        instance_id=instance_id, epoch=lease, heartbeat_at__gte=db_in(-settings.ENGINE_LISTENER_STALE_SECONDS)
    ).exists()
    if not fresh:
        raise NoSessionOwner(instance_id, "its session is starting or restarting")
    return lease


def call(
    instance_id: int,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    epoch: int | None = None,
) -> Any:
    """Run command ``name`` in the session of ``instance_id`` and return its answer.

    ``epoch`` is the lease epoch to address (default: the live one, see
    ``owner_epoch``). Raises ``NoSessionOwner`` at once when nobody would answer,
    ``StaleEpoch`` when the session refused the epoch, ``CommandTimeout`` after
    ``timeout`` seconds, or the ``TransportError`` the session answered."""
    timeout = settings.ENGINE_COMMAND_TIMEOUT_SECONDS if timeout is None else timeout
    if epoch is None:
        epoch = owner_epoch(instance_id)
    elif not CommandListener.objects.filter(
        instance_id=instance_id, heartbeat_at__gte=db_in(-settings.ENGINE_LISTENER_STALE_SECONDS)
    ).exists():
        raise NoSessionOwner(instance_id, "no session process listens")
    token = secrets.token_hex(12) if settings.REDIS_URL else ""
    with _subscription(REPLY_PREFIX + token if token else "") as pubsub:
        command = SessionCommand.objects.create(
            instance_id=instance_id,
            epoch=epoch,
            name=name,
            args=args or {},
            reply_to=token,
            expires_at=timezone.now() + timedelta(seconds=timeout),
        )
        # The claim judges expiry on the database's clock: restate it there.
        SessionCommand.objects.filter(pk=command.pk).update(expires_at=db_in(timeout))
        _publish(f"{WAKE_PREFIX}{instance_id}")
        return _await(command.pk, instance_id, name, timeout, pubsub)


def _await(pk: int, instance_id: int, name: str, timeout: float, pubsub: Any) -> Any:
    deadline = time.monotonic() + timeout
    pause = CALLER_POLL_MIN_SECONDS
    while True:
        row = SessionCommand.objects.filter(pk=pk).values("state", "result").first()
        if row is None:
            raise TransportError(f"the command {name} for instance {instance_id} was lost")
        if row["state"] in (CommandState.DONE, CommandState.FAILED, CommandState.REFUSED):
            SessionCommand.objects.filter(pk=pk).delete()
            result = row["result"] or {}
            if row["state"] == CommandState.DONE:
                return result.get("value")
            if row["state"] == CommandState.REFUSED:
                raise StaleEpoch(str(result.get("error", {}).get("message", "stale epoch")))
            raise decode_error(result.get("error", {}))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if pubsub is not None:
            _wait_message(pubsub, min(1.0, remaining))
        else:
            time.sleep(min(pause, remaining))
            pause = min(pause * 1.5, CALLER_POLL_MAX_SECONDS)
    # Nobody took it: make sure nobody will.
    if SessionCommand.objects.filter(pk=pk, state=CommandState.PENDING).update(state=CommandState.EXPIRED):
        SessionCommand.objects.filter(pk=pk).delete()
        raise CommandTimeout(
            f"the session of instance {instance_id} did not take {name} within {timeout:g} s", taken=False
        )
    # Answered in the last instant, or taken and still running (left for the prune).
    state = SessionCommand.objects.filter(pk=pk).values_list("state", flat=True).first()
    if state is not None and state != CommandState.CLAIMED:
        return _await(pk, instance_id, name, 0.0, None)
    raise CommandTimeout(
        f"the session of instance {instance_id} took {name} but did not answer within {timeout:g} s;"
        " it may still complete",
        taken=True,
    )


# --- The session's side ---------------------------------------------------------------


class Listener:
    """The session holding instance ``instance_id``'s lease at ``epoch`` serving its
    commands. ``start`` announces it (``CommandListener``), ``take`` claims what is
    addressed to it (refusing older epochs), ``answer``/``fail`` reply, ``wait``
    sleeps until a command may have arrived, ``stop`` withdraws it. Use from one
    thread."""

    def __init__(self, instance_id: int, epoch: int, runner_id: str = "") -> None:
        self.instance_id = instance_id
        self.epoch = epoch
        self.runner_id = runner_id
        self._beat_at = 0.0
        self._pruned_at = 0.0
        self._pubsub: Any = None

    def holds_lease(self) -> bool:
        return SessionLease.objects.filter(
            instance_id=self.instance_id, epoch=self.epoch, expires_at__gte=db_now()
        ).exists()

    def start(self) -> bool:
        """Announce this listener; False (nothing written) when the lease at this
        epoch is not held, or a later epoch's listener is already announced."""
        if not self.holds_lease():
            return False
        fields = {
            "epoch": self.epoch,
            "runner_id": self.runner_id,
            "pid": os.getpid(),
            "heartbeat_at": db_now(),
        }
        updated = CommandListener.objects.filter(instance_id=self.instance_id, epoch__lte=self.epoch).update(
            **fields
        )
        if not updated:
            if CommandListener.objects.filter(instance_id=self.instance_id).exists():
                return False
            CommandListener.objects.create(
                instance_id=self.instance_id,
                epoch=self.epoch,
                runner_id=self.runner_id,
                pid=os.getpid(),
                heartbeat_at=timezone.now(),
            )
            CommandListener.objects.filter(instance_id=self.instance_id, epoch=self.epoch).update(
                heartbeat_at=db_now()
            )
        self._beat_at = time.monotonic()
        if settings.REDIS_URL and self._pubsub is None:
            try:
                self._pubsub = _redis().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                self._pubsub.subscribe(f"{WAKE_PREFIX}{self.instance_id}")
            except redis.RedisError:
                log.warning(
                    "engine channel: listener of %s polls (no Redis)", self.instance_id, exc_info=True
                )
                self._pubsub = None
        return True

    def heartbeat(self) -> bool:
        """Refresh the announcement; False once the lease is lost (stop serving)."""
        if not self.holds_lease():
            return False
        CommandListener.objects.filter(instance_id=self.instance_id, epoch=self.epoch).update(
            heartbeat_at=db_now()
        )
        self._beat_at = time.monotonic()
        return True

    def keep_alive(self) -> bool:
        """Heartbeat when one is due; False once the lease is lost."""
        if time.monotonic() - self._beat_at < HEARTBEAT_SECONDS:
            return True
        return self.heartbeat()

    def take(self) -> list[SessionCommand]:
        """Claim the commands addressed to this epoch (oldest first), refusing those
        addressed to an earlier one. Claims only while the lease is held."""
        now = time.monotonic()
        if now - self._pruned_at >= 60:
            self._pruned_at = now
            SessionCommand.objects.filter(
                instance_id=self.instance_id, created_at__lt=timezone.now() - PRUNE_AFTER
            ).delete()
        inbox = SessionCommand.objects.filter(instance_id=self.instance_id, state=CommandState.PENDING)
        stale = list(inbox.filter(epoch__lt=self.epoch).values_list("pk", "epoch", "reply_to"))
        for pk, epoch, reply_to in stale:
            message = f"addressed to epoch {epoch}, but the session of instance {self.instance_id} is at epoch {self.epoch}"
            refused = SessionCommand.objects.filter(pk=pk, state=CommandState.PENDING).update(
                state=CommandState.REFUSED, result={"error": {"message": message}}, answered_at=timezone.now()
            )
            if refused and reply_to:
                _publish(REPLY_PREFIX + reply_to)
        claim = secrets.token_hex(8)
        held = SessionLease.objects.filter(
            instance_id=OuterRef("instance_id"), epoch=self.epoch, expires_at__gte=db_now()
        )
        claimed = (
            inbox.filter(epoch=self.epoch, expires_at__gte=db_now())
            .filter(Exists(held))
            .update(state=CommandState.CLAIMED, claim=claim)
        )
        if not claimed:
            return []
        return list(SessionCommand.objects.filter(claim=claim, state=CommandState.CLAIMED).order_by("pk"))

    def answer(self, command: SessionCommand, value: Any) -> None:
        self._reply(command, CommandState.DONE, {"value": value})

    def fail(self, command: SessionCommand, exc: TransportError) -> None:
        self._reply(command, CommandState.FAILED, {"error": encode_error(exc)})

    def _reply(self, command: SessionCommand, state: str, result: dict[str, Any]) -> None:
        SessionCommand.objects.filter(pk=command.pk, state=CommandState.CLAIMED).update(
            state=state, result=result, answered_at=timezone.now()
        )
        if command.reply_to:
            _publish(REPLY_PREFIX + command.reply_to)

    def wait(self, timeout: float = 1.0) -> None:
        """Sleep until a command may have arrived (a Redis wake-up), at most
        ``timeout``; without Redis, one poll interval."""
        if self._pubsub is None:
            time.sleep(min(timeout, LISTENER_POLL_SECONDS))
            return
        _wait_message(self._pubsub, timeout)

    def stop(self) -> None:
        CommandListener.objects.filter(instance_id=self.instance_id, epoch=self.epoch).delete()
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None

    def serve_once(self, handler: Handler) -> int:
        """Take and run what is addressed to this session; returns how many ran."""
        commands = self.take()
        for command in commands:
            self.run(command, handler)
        return len(commands)

    def run(self, command: SessionCommand, handler: Handler) -> None:
        try:
            value = handler(command.name, dict(command.args))
        except TransportError as exc:
            self.fail(command, exc)
        except Exception as exc:  # noqa: BLE001 - a session bug answers the caller instead of hanging it
            log.exception("engine channel: %s for instance %s failed", command.name, self.instance_id)
            self.fail(command, TransportError(f"the session failed to run {command.name}: {exc}"))
        else:
            self.answer(command, value)


def serve(listener: Listener, handler: Handler, stop: threading.Event) -> None:
    """Serve commands until ``stop`` is set or the lease is lost."""
    if not listener.start():
        return
    try:
        while not stop.is_set() and listener.keep_alive():
            if not listener.serve_once(handler):
                listener.wait(1.0)
    finally:
        listener.stop()

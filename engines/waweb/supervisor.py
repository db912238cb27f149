"""The runner's side of the waweb engine: one child process per leased waweb account.

``tick`` is the engine's session step (``EngineSpec.session``): each runner tick it
starts a ``manage.py wa_session`` child for every waweb instance the runner leases,
stops the children of instances it no longer leases (SIGTERM, then SIGKILL after
``WAWEB_STOP_GRACE_SECONDS``), and restarts children that exited, by their exit code:

- crashed, killed or could not dial: exponential backoff with jitter, 1 s up to
  5 minutes (reset once a child ran for a minute);
- logged out (the phone removed the device): not restarted at this lease epoch; the
  instance is ``notAuthorized`` and a ``reboot`` (a new epoch) starts a new session;
- stream replaced (another connection took the account): at least a minute;
- temporary ban: ``yellowCard`` (set by the child), at least a minute;
- QR budget spent with nobody scanning: at once, for fresh codes;
- silent (it says it is connected, but nothing proved traffic for
  ``WAWEB_SILENT_AFTER_SECONDS``, see ``engines.waweb.health``): stopped by the
  supervisor and started again with the crash backoff, counted in
  ``silent_restarts``.

Children die with the runner (``PR_SET_PDEATHSIG``, set by the child), and each exits
by itself once its lease is not its own. A crash, panic or hang in one account never
touches another account or the runner.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from engines.contract import SessionHost
from engines.waweb import health, store
from engines.waweb import session as codes
from engines.waweb.models import WawebSession
from instances import services
from instances.models import Engine, Instance, State

log = logging.getLogger(__name__)

BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
REPLACED_BACKOFF_SECONDS = 60.0
HEALTHY_AFTER_SECONDS = 60.0
ERASE_EVERY_SECONDS = 30.0
SILENT_CHECK_EVERY_SECONDS = 5.0


@dataclass
class Child:
    instance_id: int
    epoch: int
    proc: subprocess.Popen[bytes]
    started: float
    term_at: float | None = None
    silent_for: float | None = None  # stopped because it was silent this long


@dataclass
class Restart:
    failures: int = 0
    not_before: float = 0.0
    parked_epoch: int | None = None


_children: dict[int, Child] = {}
_restarts: dict[int, Restart] = {}
_erased_at = 0.0
_silence_checked_at = 0.0


def children() -> dict[int, int]:
    """instance id -> pid of the live children (diagnostics and tests)."""
    return {iid: child.proc.pid for iid, child in _children.items() if child.proc.poll() is None}


def backoff_seconds(failures: int) -> float:
    """1 s, 2 s, 4 s … up to 5 minutes, each stretched by up to a quarter at random so
    that many accounts failing together do not retry together."""
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_MIN_SECONDS * 2 ** max(0, failures - 1))
    return min(BACKOFF_MAX_SECONDS, base * random.uniform(1.0, 1.25))  # noqa: S311 - jitter, not secrecy


def tick(host: SessionHost) -> None:
    """One runner tick for the waweb instances ``host`` leases."""
    now = time.monotonic()
    _reap(host, now)
    wanted = dict(
        (pk, host.owned[pk])
        for pk in Instance.objects.filter(
            pk__in=list(host.owned), engine=Engine.WAWEB, is_deleted=False
        ).values_list("pk", flat=True)
    )
    for instance_id, child in list(_children.items()):
        if wanted.get(instance_id) != child.epoch:
            _terminate(child, now)
    _stop_silent(now)
    _escalate(now)
    for instance_id, epoch in wanted.items():
        if instance_id in _children:
            continue
        restart = _restarts.get(instance_id)
        if restart is not None and (restart.parked_epoch == epoch or now < restart.not_before):
            continue
        _spawn(host, instance_id, epoch, now)
    _erase_deleted(now)


# Stepped by the runner even when it holds no lease: the children of leases it has
# just lost must still be stopped.
tick.step_when_idle = True  # type: ignore[attr-defined]


def _spawn(host: SessionHost, instance_id: int, epoch: int, now: float) -> None:
    command = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "wa_session",
        "--instance",
        str(instance_id),
        "--epoch",
        str(epoch),
        "--runner-id",
        host.runner_id,
        "--parent",
        str(os.getpid()),
    ]
    proc = subprocess.Popen(command, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL)  # noqa: S603 - our own argv
    _children[instance_id] = Child(instance_id, epoch, proc, now)
    WawebSession.objects.get_or_create(instance_id=instance_id)
    WawebSession.objects.filter(pk=instance_id).update(parked_reason="", parked_until=None, connected=False)
    log.info("waweb: started session of %s (epoch %s, pid %s)", instance_id, epoch, proc.pid)


def _terminate(child: Child, now: float) -> None:
    if child.term_at is not None or child.proc.poll() is not None:
        return
    child.term_at = now
    try:
        child.proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass


def _stop_silent(now: float) -> None:
    """Stop the children whose session says it is connected but has gone silent:
    the process runs and the account looks linked, yet nothing arrives. The
    decision is ``health.silent_for`` on the session's row, at this clock."""
    global _silence_checked_at  # noqa: PLW0603 - one clock per runner process
    if now - _silence_checked_at < SILENT_CHECK_EVERY_SECONDS:
        return
    _silence_checked_at = now
    live = [iid for iid, child in _children.items() if child.term_at is None and child.proc.poll() is None]
    if not live:
        return
    wall = timezone.now()
    for row in WawebSession.objects.filter(instance_id__in=live, connected=True):
        quiet = health.silent_for(row, now=wall, silent_after=settings.WAWEB_SILENT_AFTER_SECONDS)
        if quiet is None:
            continue
        child = _children[row.instance_id]
        child.silent_for = quiet
        log.warning("waweb: session of %s says connected but was silent for %.0f s; restarting it", row.instance_id, quiet)
        _terminate(child, now)


def _escalate(now: float) -> None:
    for child in _children.values():
        overdue = child.term_at is not None and now - child.term_at >= settings.WAWEB_STOP_GRACE_SECONDS
        if overdue and child.proc.poll() is None:
            log.warning("waweb: session of %s ignored SIGTERM; killing it", child.instance_id)
            child.proc.kill()


def _reap(host: SessionHost, now: float) -> None:
    for instance_id, child in list(_children.items()):
        code = child.proc.poll()
        if code is None:
            continue
        del _children[instance_id]
        restart = _restarts.setdefault(instance_id, Restart())
        if child.silent_for is not None:
            _restart_silent(host, child, restart, now)
            continue
        if child.term_at is not None or code == codes.EXIT_STOPPED:
            WawebSession.objects.filter(pk=instance_id).update(connected=False)
            restart.not_before = now  # we stopped it (or it was asked to): no penalty
            continue
        if now - child.started >= HEALTHY_AFTER_SECONDS:
            restart.failures = 0
        reason, delay = "", 0.0
        if code in (codes.EXIT_LOGGED_OUT, codes.EXIT_LEASE_LOST):
            restart.parked_epoch = child.epoch
            reason = "loggedOut" if code == codes.EXIT_LOGGED_OUT else "leaseLost"
        elif code == codes.EXIT_QR_TIMEOUT:
            delay = BACKOFF_MIN_SECONDS
        elif code in (codes.EXIT_REPLACED, codes.EXIT_BANNED):
            restart.failures += 1
            delay = max(REPLACED_BACKOFF_SECONDS, backoff_seconds(restart.failures))
            reason = "streamReplaced" if code == codes.EXIT_REPLACED else "temporaryBan"
        else:
            restart.failures += 1
            delay = backoff_seconds(restart.failures)
            reason = "crashed" if code != codes.EXIT_CONNECT_FAILED else "connectFailed"
            _no_longer_connected(host, instance_id)
        restart.not_before = now + delay
        log.warning(
            "waweb: session of %s exited with %s; next start in %.1f s (%s)", instance_id, code, delay, reason
        )
        WawebSession.objects.filter(pk=instance_id).update(
            restarts=F("restarts") + 1,
            connected=False,
            parked_reason=reason,
            parked_until=None
            if restart.parked_epoch == child.epoch
            else timezone.now() + timedelta(seconds=delay),
        )


def _restart_silent(host: SessionHost, child: Child, restart: Restart, now: float) -> None:
    """A child stopped for silence starts again with the crash backoff. Its long
    run does not reset the backoff: silence that comes back is backed off more."""
    restart.failures += 1
    delay = backoff_seconds(restart.failures)
    restart.not_before = now + delay
    _no_longer_connected(host, child.instance_id)
    why = f"silent for {child.silent_for:.0f} s: said connected, but no event and no answered probe"
    WawebSession.objects.filter(pk=child.instance_id).update(
        restarts=F("restarts") + 1,
        silent_restarts=F("silent_restarts") + 1,
        connected=False,
        last_error=why,
        parked_reason="silent",
        parked_until=timezone.now() + timedelta(seconds=delay),
    )


def _no_longer_connected(host: SessionHost, instance_id: int) -> None:
    """A session that died while connected no longer carries the account: the
    instance is ``starting`` until the next session connects."""
    if instance_id not in host.owned:
        return
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is not None and instance.state in (State.AUTHORIZED, State.SLEEP_MODE):
        services.change_state(
            instance,
            State.STARTING,
            fence=host.fence(instance_id),
            from_states=(State.AUTHORIZED, State.SLEEP_MODE),
        )


def _erase_deleted(now: float) -> None:
    """Deleted instances' linked devices are erased (their keys *are* the device)."""
    global _erased_at  # noqa: PLW0603 - one clock per runner process
    if now - _erased_at < ERASE_EVERY_SECONDS:
        return
    _erased_at = now
    deleted = Instance.objects.filter(engine=Engine.WAWEB, is_deleted=True).values("pk")
    for instance_id in (
        WawebSession.objects.filter(instance_id__in=deleted)
        .exclude(device_jid="")
        .values_list("instance_id", flat=True)
    ):
        try:
            store.forget_device(instance_id)
        except Exception:  # noqa: BLE001 - retried on the next round
            log.exception("waweb: could not erase the keys of deleted instance %s", instance_id)


def stop_all(grace: float | None = None) -> None:
    """Stop every child (SIGTERM, then SIGKILL after ``grace``): the runner exits."""
    grace = settings.WAWEB_STOP_GRACE_SECONDS if grace is None else grace
    for child in _children.values():
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in _children.values():
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
    _children.clear()


atexit.register(stop_all)

"""Honest health of waweb sessions: which are really carrying an account, which say
they are connected but have gone silent, and the figures behind it.

A session (``engines.waweb.session``) stamps ``alive_at`` whenever something proves
its connection carries traffic: an event from WhatsApp other than a failure, or an
answer to the liveness probe it sends after ``WAWEB_PROBE_AFTER_SECONDS`` without
one. The stamp is written by the session's main loop, so a wedged loop, a Go side
that stopped calling back and a socket that died without whatsmeow noticing all
look the same: no proof. A session that says it is connected (``connected``) with no
proof for ``WAWEB_SILENT_AFTER_SECONDS`` is *silent*; the supervisor restarts it.

The decisions take ``now`` and the row, so they never read a clock themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engines.models import CommandListener
from engines.registry import SessionHealth
from engines.waweb.models import WawebSession
from instances.dbclock import db_in
from instances.models import Engine, Instance

HEALTHY = "healthy"
SILENT = "silent"
DIALING = "dialing"
BACKING_OFF = "backingOff"
STOPPED = "stopped"
STATUSES = (HEALTHY, SILENT, DIALING, BACKING_OFF, STOPPED)
ENGINE = str(Engine.WAWEB.value)


def proof_at(row: WawebSession) -> datetime | None:
    """The last time something proved the session's connection carried traffic
    (connecting counts)."""
    times = [t for t in (row.connected_at, row.alive_at) if t is not None]
    return max(times) if times else None


def silent_for(row: WawebSession, *, now: datetime, silent_after: float) -> float | None:
    """How many seconds a session that says it is connected has shown no proof of
    traffic, when that is longer than ``silent_after``; None when it is not silent
    (not connected, or proven recently)."""
    if not row.connected:
        return None
    proof = proof_at(row) or row.started_at
    if proof is None:
        return None
    quiet = (now - proof).total_seconds()
    return quiet if quiet > silent_after else None


def classify(row: WawebSession, *, now: datetime, silent_after: float, running: bool) -> str:
    """One of ``STATUSES`` for the session in ``row``. ``running``: a session
    process serves the instance now (a fresh command-channel heartbeat)."""
    if row.parked_reason:
        # The supervisor stopped it: until a time (backing off), or for this
        # lease epoch (logged out, lease lost).
        return BACKING_OFF if row.parked_until is not None else STOPPED
    if not running:
        return STOPPED
    if not row.connected:
        return DIALING
    return SILENT if silent_for(row, now=now, silent_after=silent_after) is not None else HEALTHY


def _running() -> Exists:
    return Exists(
        CommandListener.objects.filter(
            instance_id=OuterRef("instance_id"),
            heartbeat_at__gte=db_in(-settings.ENGINE_LISTENER_STALE_SECONDS),
        )
    )


def session_health(instance: Instance, now: datetime) -> SessionHealth:
    """``EngineSpec.health`` of the waweb engine: the instance's session row as it
    is at ``now`` (an instance whose session never started is ``stopped``)."""
    silent_after = float(settings.WAWEB_SILENT_AFTER_SECONDS)
    row = WawebSession.objects.filter(instance_id=instance.pk).first() or WawebSession(instance_id=instance.pk)
    running = CommandListener.objects.filter(
        instance_id=instance.pk, heartbeat_at__gte=db_in(-settings.ENGINE_LISTENER_STALE_SECONDS)
    ).exists()
    return SessionHealth(
        status=classify(row, now=now, silent_after=silent_after, running=running),
        started_at=row.started_at,
        connected_at=row.connected_at,
        last_event_at=row.last_event_at,
        alive_at=row.alive_at,
        reconnects=row.reconnects,
        keepalive_failures=row.keepalive_failures,
        restarts=row.restarts,
        silent_restarts=row.silent_restarts,
        last_error=row.last_error,
        backing_off_reason=row.parked_reason,
        backing_off_until=row.parked_until,
        silent_after_seconds=silent_after,
    )


class SessionCollector(Collector):
    """``/metrics`` for waweb sessions, read from the database at scrape time:
    sessions by health, the longest time a connected session has gone without an
    event, and the sums of reconnects, keep-alive failures and restarts. Labels
    are bounded (the engine and the five health values): per-instance figures are
    in the cabinet and ``getSessionHealth``."""

    def describe(self) -> Iterable[Metric]:
        return []  # no DB access at registration time

    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        silent_after = float(settings.WAWEB_SILENT_AFTER_SECONDS)
        instances = Instance.objects.filter(engine=Engine.WAWEB, is_deleted=False)
        counts = dict.fromkeys(STATUSES, 0)
        totals = {"reconnects": 0, "keepalive_failures": 0, "restarts": 0, "silent_restarts": 0}
        quiet_max = 0.0
        seen = 0
        rows = WawebSession.objects.filter(instance_id__in=instances.values("pk")).annotate(running=_running())
        for row in rows.iterator():
            seen += 1
            status = classify(row, now=now, silent_after=silent_after, running=bool(row.running))
            counts[status] += 1
            for name in totals:
                totals[name] += int(getattr(row, name))
            if status in (HEALTHY, SILENT):
                last = row.last_event_at or row.connected_at
                if last is not None:
                    quiet_max = max(quiet_max, (now - last).total_seconds())
        counts[STOPPED] += instances.count() - seen  # never started: no row yet

        sessions = GaugeMetricFamily(
            "relay_engine_sessions", "Live-session engines' sessions by health.", labels=["engine", "health"]
        )
        for status in STATUSES:
            sessions.add_metric([ENGINE, status], counts[status])
        yield sessions
        quiet = GaugeMetricFamily(
            "relay_engine_session_seconds_since_last_event_max",
            "The longest time any connected session has gone without an event from WhatsApp.",
            labels=["engine"],
        )
        quiet.add_metric([ENGINE], round(quiet_max, 3))
        yield quiet
        for name, help_text in (
            ("reconnects", "Reconnections whatsmeow made inside running sessions."),
            ("keepalive_failures", "Keep-alive pings WhatsApp did not answer."),
            ("restarts", "Session processes that ended and were started again."),
            ("silent_restarts", "Sessions restarted because they said connected but stayed silent."),
        ):
            counter = CounterMetricFamily(f"relay_engine_session_{name}", help_text, labels=["engine"])
            counter.add_metric([ENGINE], totals[name])
            yield counter

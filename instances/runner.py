"""Session runners: lease instances, run their engine sessions, hand them over on death.

Exactly one runner owns an instance at a time. Ownership is a row in
``SessionLease``: a runner takes a free or expired lease with a compare-and-set
UPDATE that bumps ``epoch`` (the fencing token), renews it with heartbeats, and
releases it on shutdown. A runner killed with -9 simply stops renewing; once the
TTL passes, another runner's CAS succeeds with a higher epoch. Every write a session
makes is fenced by (runner_id, epoch, unexpired), so a stalled runner that wakes up
after losing its lease cannot change anything.

Emulator sessions are cheap: one query per tick covers all of a runner's emulator
instances. ``waweb`` sessions (later) live in child processes driven from here.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from instances import services
from instances.dbclock import db_in, db_now
from instances.models import Engine, Instance, LeaseGrant, SessionLease, State

log = logging.getLogger(__name__)


def new_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class Runner:
    """One ``runsessions`` process. Call ``tick()`` periodically and ``shutdown()``
    on exit; both are safe to call from one thread only."""

    runner_id: str = field(default_factory=new_runner_id)
    ttl: float = field(default_factory=lambda: settings.RUNNER_LEASE_TTL_SECONDS)
    capacity: int = field(default_factory=lambda: settings.RUNNER_CAPACITY)
    # instance id -> epoch we hold
    owned: dict[int, int] = field(default_factory=dict)
    # Serialises the lease bookkeeping (heartbeat, acquire) between tick() and the
    # renewal thread of ``runsessions`` (see renew()).
    lease_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tick(self) -> None:
        """Renew leases, drop lost ones, take free ones, then step the sessions."""
        with self.lease_lock:
            self.heartbeat()
            self.acquire()
        self.step_emulator_sessions()
        self.step_emulator_receipts()
        self.step_emulator_calls()
        self.step_emulator_inbox()
        self.step_emulator_statuses()
        self.step_emulator_presence()

    # --- leases -------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Extend our unexpired leases; forget any we no longer hold."""
        if not self.owned:
            return
        # Lease times are the database's (instances.dbclock), never this process's.
        # Only the leases this process took: a runner restarted under the same
        # ``--runner-id`` must not keep its dead predecessor's leases alive (it does
        # not run those sessions; they have to expire and be taken over).
        SessionLease.objects.filter(
            runner_id=self.runner_id, instance_id__in=list(self.owned), expires_at__gte=db_now()
        ).update(heartbeat_at=db_now(), expires_at=db_in(self.ttl))
        held = dict(
            SessionLease.objects.filter(
                runner_id=self.runner_id, instance_id__in=list(self.owned), expires_at__gte=db_now()
            ).values_list("instance_id", "epoch")
        )
        for instance_id, epoch in list(self.owned.items()):
            if held.get(instance_id) != epoch:
                log.warning("runner %s lost lease of %s (epoch %s)", self.runner_id, instance_id, epoch)
                del self.owned[instance_id]

    def renew(self) -> None:
        """Heartbeat only, for a thread of its own: under load a tick's session steps
        (receipts for thousands of instances) can outlast the TTL, and a lease renewed
        only between ticks would lapse and be re-taken although this runner is alive."""
        with self.lease_lock:
            self.heartbeat()

    def acquire(self) -> list[int]:
        """Take free or expired leases up to capacity; returns the newly taken ids."""
        room = self.capacity - len(self.owned)
        if room <= 0:
            return []
        candidates = list(
            SessionLease.objects.filter(instance__is_deleted=False)
            .filter(Q(runner_id="") | Q(expires_at__lt=db_now()) | Q(expires_at__isnull=True))
            .exclude(instance_id__in=list(self.owned))
            .order_by("instance_id")
            .values_list("instance_id", "epoch", "runner_id", "expires_at")[:room]
        )
        taken: list[int] = []
        for instance_id, epoch, previous_runner, previous_expiry in candidates:
            if self._take(instance_id, epoch, previous_runner, previous_expiry):
                taken.append(instance_id)
        if taken:
            log.info("runner %s acquired %d instance(s)", self.runner_id, len(taken))
        return taken

    def _take(
        self, instance_id: int, epoch: int, previous_runner: str, previous_expiry: datetime | None
    ) -> bool:
        try:
            with transaction.atomic():
                # Compare-and-set: only succeeds if nobody took or renewed it since we
                # read it. Expiry is judged on the database's clock (instances.dbclock).
                won = (
                    SessionLease.objects.filter(instance_id=instance_id, epoch=epoch)
                    .filter(Q(runner_id="") | Q(expires_at__lt=db_now()) | Q(expires_at__isnull=True))
                    .update(
                        runner_id=self.runner_id,
                        epoch=epoch + 1,
                        acquired_at=db_now(),
                        heartbeat_at=db_now(),
                        expires_at=db_in(self.ttl),
                    )
                )
                if won != 1:
                    return False
                LeaseGrant.objects.create(
                    instance_id=instance_id,
                    epoch=epoch + 1,
                    runner_id=self.runner_id,
                    previous_runner_id=previous_runner,
                    previous_expires_at=previous_expiry,
                    granted_at=db_now(),
                )
        except IntegrityError:
            return False
        self.owned[instance_id] = epoch + 1
        return True

    def shutdown(self) -> None:
        """Release every lease so other runners take over at once, not after the TTL."""
        if self.owned:
            SessionLease.objects.filter(runner_id=self.runner_id, instance_id__in=list(self.owned)).update(
                runner_id="", expires_at=None
            )
            log.info("runner %s released %d lease(s)", self.runner_id, len(self.owned))
        self.owned.clear()

    def fence(self, instance_id: int) -> tuple[str, int]:
        return (self.runner_id, self.owned[instance_id])

    # --- sessions -----------------------------------------------------------------

    def step_emulator_sessions(self) -> None:
        """Finish connects: ``starting`` becomes ``authorized`` (linked) or
        ``notAuthorized`` once the emulated startup delay has passed."""
        if not self.owned:
            return
        ready_before = timezone.now() - timedelta(seconds=settings.EMULATOR_STARTUP_SECONDS)
        starting = Instance.objects.filter(
            lease__runner_id=self.runner_id,
            engine=Engine.EMULATOR,
            state=State.STARTING,
            state_changed_at__lte=ready_before,
        )
        for instance in starting:
            if instance.pk not in self.owned:
                continue
            target = State.AUTHORIZED if instance.wid else State.NOT_AUTHORIZED
            services.change_state(instance, target, fence=self.fence(instance.pk))

    def step_emulator_receipts(self) -> None:
        """Emulated recipients acknowledge what our instances sent them (delivered,
        then read) after the configured delays."""
        if not self.owned:
            return
        from messaging.services import emulate_receipts

        emulate_receipts(
            self.runner_id,
            delivered_after=settings.EMULATOR_DELIVERED_AFTER_SECONDS,
            read_after=settings.EMULATOR_READ_AFTER_SECONDS,
        )

    def step_emulator_presence(self) -> None:
        """keepOnlineStatus: connected instances that keep themselves online show
        so to their contacts; the others are seen online no longer."""
        if not self.owned:
            return
        from instances.emulator_session import keep_online

        keep_online(self.runner_id)

    def step_emulator_inbox(self) -> None:
        """Take in what the emulated network carried to (or from) our instances."""
        if not self.owned:
            return
        from instances.emulator_session import take_inbox

        take_inbox(self.runner_id)

    def step_emulator_statuses(self) -> None:
        """Statuses: our instances take in what was posted to them; simulated
        viewers deliver and view what our instances posted."""
        if not self.owned:
            return
        from instances.emulator_statuses import emulate_status_views, take_statuses

        take_statuses(self.runner_id)
        emulate_status_views(
            self.runner_id,
            delivered_after=settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS,
            read_after=settings.EMULATOR_STATUS_READ_AFTER_SECONDS,
        )

    def step_emulator_calls(self) -> None:
        """Simulated contacts take the calls ringing them (by their call rule) and
        unanswered calls time out; the instances on either side are told."""
        if not self.owned:
            return
        from instances import emulator_calls
        from messaging.calls import notify_phones

        for call in emulator_calls.step():
            with transaction.atomic():
                notify_phones([call.caller, call.callee])

"""Session runners: lease instances, run their engine sessions, hand them over on death.

Exactly one runner owns an instance at a time. Ownership is a row in
``SessionLease``: a runner takes a free or expired lease with a compare-and-set
UPDATE that bumps ``epoch`` (the fencing token), renews it with heartbeats, and
releases it on shutdown. A runner killed with -9 simply stops renewing; once the
TTL passes, another runner's CAS succeeds with a higher epoch. Every write a session
makes is fenced by (runner_id, epoch, unexpired), so a stalled runner that wakes up
after losing its lease cannot change anything.

Sessions belong to engines: each tick, every installed engine that has live
sessions (``EngineSpec.session``) steps the instances of it this runner leases. The
runner itself knows only leases.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from engines import registry
from instances.dbclock import db_in, db_now
from instances.models import LeaseGrant, SessionLease

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
        self.step_sessions()

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

    def step_sessions(self) -> None:
        """Each installed engine with live sessions steps the instances of it this
        runner leases. One engine's failure is logged and never stops another's."""
        for name, step in registry.session_steps():
            # An engine that keeps processes of its own (waweb) is stepped even with
            # no lease left, so it can stop the sessions of leases it just lost.
            if not self.owned and not getattr(step, "step_when_idle", False):
                continue
            try:
                step(self)
            except Exception:
                log.exception("runner %s: the %s engine's step failed", self.runner_id, name)

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

"""Webhook delivery tasks. They take instance ids (never a notification) and are
safe to run twice: claims in SQL make duplicate wake-ups no-ops."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from celery.worker import state as worker_state

from instances import coalesce
from journals import services, webhooks

if TYPE_CHECKING:
    _Base = Task[Any, Any]
else:
    _Base = Task


# A leader hands over to a fresh task after this long (like the send drain's,
# messaging.tasks), so one task never holds a worker thread for a whole burst.
LEADER_RUN_SECONDS = 30.0
# An idle leader polls the ready set this often, for this long, before it steps
# down: at a few notifications a second per worker, stepping down at once made
# nearly every notification publish and start a leader task of its own (a broker
# round trip and a task), which cost more than the poll's one Redis call.
IDLE_POLL_SECONDS = 0.02
IDLE_LINGER_SECONDS = 0.5


class CoalescedWake(_Base):
    """A run of one instance asked for while one is already waiting in the broker for
    that instance is dropped (with Redis), so an instance costs one queued task, not
    one per request. Delayed requests (retries) are never dropped. (Notification
    commits go to the sweep leader instead: ``webhooks.wake_many``.)"""

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        coalesce = bool(args) and not options.get("countdown") and not options.get("eta")
        if coalesce and not self.app.conf.task_always_eager:
            if not webhooks.mark_wake_pending(int(args[0])):
                return None
            try:
                return super().apply_async(args, kwargs, *rest, **options)
            except Exception:
                webhooks.clear_wake_pending(int(args[0]))
                raise
        return super().apply_async(args, kwargs, *rest, **options)


@shared_task(base=CoalescedWake, acks_late=True, ignore_result=True)
def deliver_webhooks_task(instance_id: int) -> None:
    webhooks.clear_wake_pending(instance_id)  # before reading the queue: no lost wake-up
    wait = webhooks.deliver(instance_id)
    if wait is not None:
        webhooks.wake(instance_id, countdown=wait)


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks_ready_task() -> None:
    """The sweep leader (instances.coalesce ``offer``/``take``, as the send drain's
    ``drain_ready_task``): while instances are ready, take up to ``SWEEP_SIZE`` of
    them and sweep them together (``webhooks.sweep``); instances with more to send are
    carried into the next sweep with whatever became ready meanwhile. Its publisher
    set the leader mark, so wake-ups only add ids to the ready set. More ready than
    one sweep holds: a helper task sweeps the next ones. With nothing ready it polls
    for ``IDLE_LINGER_SECONDS`` before stepping down. Safe to run twice: two
    leaders take disjoint ids, and head leases keep each instance to one sender."""
    deadline = time.monotonic() + LEADER_RUN_SECONDS
    size = webhooks.SWEEP_SIZE
    carry: list[int] = []
    idle_since: float | None = None
    while True:
        ids = carry + coalesce.take(webhooks.WEBHOOK_WAKE, size - len(carry))
        if not ids:
            now = time.monotonic()
            idle_since = idle_since or now
            if now - idle_since < IDLE_LINGER_SECONDS and now < deadline and not _stopping():
                time.sleep(IDLE_POLL_SECONDS)  # take refreshes the mark meanwhile
                continue
            if not coalesce.keep_leading(webhooks.WEBHOOK_WAKE):
                return  # stepped down: the next wake-up starts a leader
            idle_since = None
            continue  # ids arrived between the take and the check
        idle_since = None
        if len(ids) >= size:
            helper = coalesce.take(webhooks.WEBHOOK_WAKE, size)
            if helper:
                webhooks.publish(deliver_webhooks_many_task, (helper,))
        carry = webhooks.sweep(ids)
        if time.monotonic() >= deadline or _stopping():
            # Hand over, still holding the mark: a successor takes the rest.
            if not coalesce.give_back(webhooks.WEBHOOK_WAKE, carry):
                webhooks.publish(deliver_webhooks_many_task, (carry,))
            if coalesce.keep_leading(webhooks.WEBHOOK_WAKE) and not webhooks.publish(
                deliver_webhooks_ready_task, ()
            ):
                coalesce.resign(webhooks.WEBHOOK_WAKE)  # the next wake-up starts a leader; beat is the net
            return


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks_many_task(instance_ids: list[int]) -> None:
    """A leader's helper: one sweep over the given instances; leftovers are re-woken."""
    again = webhooks.sweep(instance_ids)
    if again:
        webhooks.wake_many(again)


def _stopping() -> bool:
    """The worker is in its warm shutdown: a leader hands over now."""
    # Identity, as celery's own check: a warm shutdown sets it to EX_OK, which is 0.
    return worker_state.should_stop is not None and worker_state.should_stop is not False


@shared_task(acks_late=True, ignore_result=True)
def wake_due_webhooks_task() -> dict[str, int]:
    """Beat: wake instances with a due delivery; prune the attempt log."""
    return {**webhooks.wake_due(), "pruned": webhooks.prune_attempts()}


@shared_task(acks_late=True, ignore_result=True)
def expire_notifications_task() -> dict[str, int]:
    """Notifications leave the queue after NOTIFICATION_RETENTION_SECONDS (24 h)."""
    return services.expire_notifications()

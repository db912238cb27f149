"""Webhook delivery tasks. They take an instance id (never a notification) and are
safe to run twice: claims in SQL make duplicate wake-ups no-ops."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Task, shared_task

from journals import services, webhooks

if TYPE_CHECKING:
    _Base = Task[Any, Any]
else:
    _Base = Task


class CoalescedWake(_Base):
    """Every notification commit asks for a run; while one is already waiting in the
    broker for that instance, further immediate requests are dropped (with Redis),
    so a busy instance costs one queued task, not one per notification. Delayed
    requests (retries) are never dropped."""

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
def wake_due_webhooks_task() -> dict[str, int]:
    """Beat: wake instances with a due delivery; prune the attempt log."""
    return {**webhooks.wake_due(), "pruned": webhooks.prune_attempts()}


@shared_task(acks_late=True, ignore_result=True)
def expire_notifications_task() -> dict[str, int]:
    """Notifications leave the queue after NOTIFICATION_RETENTION_SECONDS (24 h)."""
    return services.expire_notifications()

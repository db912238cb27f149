"""The Celery app. Tasks live in each app's tasks.py and take ids only."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="retention")  # journals.retention: housekeeping

from django.conf import settings  # noqa: E402 - after DJANGO_SETTINGS_MODULE is set

app.conf.beat_schedule = {
    "recover-send-queues": {
        "task": "messaging.tasks.recover_queues_task",
        "schedule": settings.RELAY_RECOVER_INTERVAL_SECONDS,
    },
    "wake-due-webhooks": {"task": "journals.tasks.wake_due_webhooks_task", "schedule": settings.WEBHOOK_RECOVER_INTERVAL_SECONDS},
    "prune-journals": {"task": "journals.retention.prune_journals_task", "schedule": 3600.0},
    "expire-notifications": {"task": "journals.tasks.expire_notifications_task", "schedule": 600.0},
    "delete-expired-files": {"task": "messaging.tasks.delete_expired_files_task", "schedule": 3600.0},
    "prune-state-history": {
        "task": "instances.tasks.prune_state_history_task",
        "schedule": 3600.0,
    },
}

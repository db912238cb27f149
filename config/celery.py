"""The Celery app. Tasks live in each app's tasks.py and take ids only."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402 - after DJANGO_SETTINGS_MODULE is set

app.conf.beat_schedule = {
    "recover-send-queues": {
        "task": "messaging.tasks.recover_queues_task",
        "schedule": settings.RELAY_RECOVER_INTERVAL_SECONDS,
    },
    "prune-state-history": {
        "task": "instances.tasks.prune_state_history_task",
        "schedule": 3600.0,
    },
}

"""The Celery app. Tasks live in each app's tasks.py and take ids only."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "recover-send-queues": {
        "task": "messaging.tasks.recover_queues_task",
        "schedule": 30.0,
    },
    "prune-state-history": {
        "task": "instances.tasks.prune_state_history_task",
        "schedule": 3600.0,
    },
}

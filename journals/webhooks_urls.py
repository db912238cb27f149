"""``/api/v1/webhooks/…`` (included from config.urls)."""

from django.urls import path

from journals import webhooks_api

urlpatterns = [
    path("attempts", webhooks_api.Attempts.as_view(), name="webhook-attempts"),
    path("notifications", webhooks_api.Notifications.as_view(), name="webhook-notifications"),
    path("redeliver", webhooks_api.Redeliver.as_view(), name="webhook-redeliver"),
]

"""Operator console: notifications and webhook deliveries, read-only."""

from __future__ import annotations

from django.contrib import admin

from instances.admin import ReadOnlyAdmin
from journals.models import Notification, WebhookAttempt, WebhookRedelivery


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("receipt_id", "instance", "type_webhook", "state", "attempts", "created_at", "next_attempt_at")
    list_filter = ("state", "type_webhook")
    search_fields = ("=instance__id", "=receipt_id")
    list_select_related = ("instance",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ("receipt_id", "instance", "attempt", "ok", "status_code", "latency_ms", "error", "started_at")
    list_filter = ("ok", "status_code")
    search_fields = ("=instance__id", "=receipt_id", "url")
    list_select_related = ("instance",)
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(WebhookRedelivery)
class WebhookRedeliveryAdmin(ReadOnlyAdmin):
    list_display = ("instance", "receipt_from", "receipt_to", "count", "requested_by", "requested_at")
    list_filter = ("requested_by",)
    search_fields = ("=instance__id",)
    list_select_related = ("instance",)
    date_hierarchy = "requested_at"

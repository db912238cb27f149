"""Operator console: the send queues, read-only (the queue is the table)."""

from __future__ import annotations

from django.contrib import admin

from instances.admin import ReadOnlyAdmin
from messaging.models import MediaFile, OutgoingMessage, SendCursor


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(ReadOnlyAdmin):
    list_display = ("id_message", "instance", "chat_id", "method", "type_message", "status", "attempts", "created_at", "sent_at")
    list_filter = ("status", "method", "type_message")
    search_fields = ("=id_message", "=instance__id", "chat_id")
    list_select_related = ("instance",)
    date_hierarchy = "created_at"
    show_full_result_count = False  # the table is large; counting it is not free


@admin.register(MediaFile)
class MediaFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "file_name", "mime_type", "size", "created_at", "expires_at")
    search_fields = ("=instance__id", "file_name")
    list_select_related = ("instance",)


@admin.register(SendCursor)
class SendCursorAdmin(ReadOnlyAdmin):
    """Per-instance drain lock and pacing clock: who is draining which queue."""

    list_display = ("instance", "locked_by", "locked_until", "last_sent_at", "last_was_file")
    search_fields = ("=instance__id",)
    list_select_related = ("instance",)

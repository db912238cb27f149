from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from engines.waweb.models import WawebSession

if TYPE_CHECKING:
    # django-stubs makes it generic; at runtime it is not subscriptable.
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(WawebSession)
class WawebSessionAdmin(ModelAdmin):
    """Each waweb session's health, read-only: what the supervisor and the session
    process report (restarts and those for silence, last event, last proof of traffic,
    reconnects, why it is backing off); engines.waweb.health says what they mean."""

    list_display = (
        "instance_id",
        "device_jid",
        "connected",
        "connected_at",
        "last_event_at",
        "alive_at",
        "reconnects",
        "keepalive_failures",
        "restarts",
        "silent_restarts",
        "parked_reason",
        "parked_until",
    )
    search_fields = ("instance_id", "device_jid")
    exclude = ("qr_png",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

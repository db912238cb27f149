from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from engines.cloud.crypto import mask
from engines.cloud.models import CloudAccount, CloudInbox

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]  # generic in django-stubs only
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(CloudAccount)
class CloudAccountAdmin(ModelAdmin):
    """Credentials are never shown in full after creation: masked, read-only."""

    list_display = ("instance", "phone_number_id", "display_phone_number", "token", "problem", "checked_at")
    search_fields = ("phone_number_id", "display_phone_number", "instance__id")
    fields = ("instance", "phone_number_id", "display_phone_number", "verified_name", "token", "secret", "verify", "problem", "checked_at")
    readonly_fields = fields

    @admin.display(description="access token")
    def token(self, obj: CloudAccount) -> str:
        return mask(obj.access_token)

    @admin.display(description="app secret")
    def secret(self, obj: CloudAccount) -> str:
        return mask(obj.app_secret)

    @admin.display(description="verify token")
    def verify(self, obj: CloudAccount) -> str:
        return mask(obj.verify_token)

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(CloudInbox)
class CloudInboxAdmin(ModelAdmin):
    """Meta's deliveries not taken in yet, and those set aside after repeated failure."""

    list_display = ("id", "instance", "received_at", "attempts", "dead", "last_error")
    list_filter = ("dead",)
    search_fields = ("instance__id",)
    readonly_fields = ("instance", "payload", "received_at", "attempts", "last_error")

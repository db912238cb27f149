"""The emulated network's phones in the operator console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from engines.emulator.models import EmuPhone

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(EmuPhone)
class EmuPhoneAdmin(ModelAdmin):
    list_display = ("phone", "name", "registered", "script", "created_at")
    search_fields = ("phone", "name")
    list_filter = ("registered", "script")

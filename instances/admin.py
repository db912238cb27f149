"""Operator console: accounts, leases and their history. The instance page, which reads
queues and webhooks too, lives in ``dashboard/admin.py`` (the layer above every app)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from instances import accounts
from instances.models import Account, Instance, LeaseGrant, SessionLease

if TYPE_CHECKING:
    # django-stubs makes these generic; at runtime they are not subscriptable.
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline


class InstanceInline(TabularInline):
    model = Instance
    fields = ("id", "name", "engine", "state", "wid", "is_suspended", "is_deleted")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Account)
class AccountAdmin(ModelAdmin):
    list_display = ("id", "user", "name", "instance_count", "created_at")
    list_display_links = ("id", "user")
    search_fields = ("user__username", "user__email", "name")
    readonly_fields = ("partner_token", "created_at")
    list_select_related = ("user",)
    list_filter = ("created_at", "user__is_active")
    inlines = [InstanceInline]
    actions = ["rotate_partner_token"]

    @admin.action(description="Rotate partner token")
    def rotate_partner_token(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for acc in queryset:
            accounts.rotate_partner_token(acc)
        messages.success(request, f"New partner tokens for {len(queryset)} account(s); old ones stopped working.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        live = Count("instances", filter=Q(instances__is_deleted=False))
        return super().get_queryset(request).annotate(live_instances=live)

    @admin.display(description="instances", ordering="live_instances")
    def instance_count(self, obj: Account) -> int:
        return int(getattr(obj, "live_instances", 0))


class ReadOnlyAdmin(ModelAdmin):
    """Lease rows belong to the runners and grants are an audit trail: view only.
    (Deleting a lease row would leave its instance with no session forever.)"""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SessionLease)
class SessionLeaseAdmin(ReadOnlyAdmin):
    list_display = ("instance", "runner_id", "epoch", "heartbeat_age", "expires_at")
    search_fields = ("=instance__id", "runner_id")

    @admin.display(description="heartbeat age (s)")
    def heartbeat_age(self, obj: SessionLease) -> str:
        if obj.heartbeat_at is None:
            return "—"
        return f"{(timezone.now() - obj.heartbeat_at).total_seconds():.1f}"


@admin.register(LeaseGrant)
class LeaseGrantAdmin(ReadOnlyAdmin):
    list_display = ("instance", "epoch", "runner_id", "previous_runner_id", "granted_at")
    search_fields = ("=instance__id", "runner_id")

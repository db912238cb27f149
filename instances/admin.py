"""Operator console: accounts, instances (with actions), leases and their history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from instances import accounts, services
from instances.models import Account, EmuPhone, Instance, InstanceStateChange, LeaseGrant, SessionLease
from instances.transport import TransportError

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


class StateChangeInline(TabularInline):
    model = InstanceStateChange
    fields = ("created_at", "state", "phone")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)


@admin.register(Instance)
class InstanceAdmin(ModelAdmin):
    list_display = ("id", "name", "account", "engine", "state", "wid", "lease_owner", "is_suspended", "is_deleted", "created_at")
    list_filter = ("engine", "state", "is_suspended", "is_deleted")
    search_fields = ("=id", "name", "wid", "phone", "account__user__username")
    readonly_fields = ("id", "api_token", "state", "state_changed_at", "wid", "phone", "webhook_secret", "created_at", "deleted_at")
    exclude = ("qr_secret", "pairing_code", "pairing_phone", "pairing_expires_at", "emulator_cursor", "emulator_signal_cursor")
    list_select_related = ("account__user", "lease")
    actions = ["reboot", "logout", "rotate_token", "suspend", "unsuspend"]
    inlines = [StateChangeInline]

    def delete_model(self, request: HttpRequest, obj: Instance) -> None:
        # Deleting is the partner API's soft delete: history and journals stay.
        services.delete_instance(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset:
            services.delete_instance(instance)

    @admin.display(description="runner")
    def lease_owner(self, obj: Instance) -> str:
        lease = getattr(obj, "lease", None)
        if lease is None or not lease.runner_id:
            return "—"
        if lease.expires_at and lease.expires_at < timezone.now():
            return f"{lease.runner_id} (expired)"
        return lease.runner_id

    def _each(self, request: HttpRequest, queryset: QuerySet[Instance], action: Any) -> int:
        """Run ``action`` per instance; an engine failure is reported, not a 500."""
        done = 0
        for instance in queryset:
            try:
                action(instance)
            except TransportError as exc:
                messages.error(request, f"{instance.id}: {exc}")
            else:
                done += 1
        return done

    @admin.action(description="Reboot selected instances")
    def reboot(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        done = self._each(request, queryset, services.reboot)
        if done:
            messages.success(request, f"Rebooting {done} instance(s).")

    @admin.action(description="Log out selected instances")
    def logout(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        done = self._each(request, queryset, services.logout)
        if done:
            messages.success(request, f"Logged out {done} instance(s).")

    @admin.action(description="Rotate API token")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset:
            services.update_api_token(instance)
        messages.success(request, f"New tokens for {queryset.count()} instance(s); old ones stopped working.")

    @admin.action(description="Suspend (API answers 403)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset:
            services.set_suspended(instance, True)
        messages.success(request, f"Suspended {len(queryset)} instance(s); their API answers 403.")

    @admin.action(description="Unsuspend")
    def unsuspend(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset:
            services.set_suspended(instance, False)
        messages.success(request, f"Unsuspended {len(queryset)} instance(s).")


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


@admin.register(EmuPhone)
class EmuPhoneAdmin(ModelAdmin):
    list_display = ("phone", "name", "registered", "script", "created_at")
    search_fields = ("phone", "name")
    list_filter = ("registered", "script")

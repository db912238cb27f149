"""Operator console: the instance pages of ``/admin/``.

They live here, in the layer above every app, because answering "what is wrong with
instance N" means reading its queue, notifications and webhook attempts beside the
instance itself (``dashboard.operator``). Settings are edited with the cabinet's own
form, so an operator gets the same validation as the customer and the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from dashboard import operator
from dashboard.forms import SettingsForm, setting_field
from engines.contract import TransportError
from instances import services, settings_spec
from instances.models import Instance, InstanceStateChange
from journals import webhooks
from messaging import services as messaging_services

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart, never enough to use it."""
    return f"{secret[:4]}…{secret[-2:]}" if len(secret) > 8 else "…"


class InstanceAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The instance's editable columns plus every setting as a real field, validated by
    the cabinet's ``SettingsForm`` (which runs setSettings' own serializer)."""

    class Meta:
        model = Instance
        fields = ("name",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for spec in settings_spec.SETTINGS:
                self.initial[spec.name] = self.instance.setting(spec.name)
        self.settings_form: SettingsForm | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk:
            self.settings_form = SettingsForm(self.data, instance=self.instance)
            if not self.settings_form.is_valid():
                for name, errors in self.settings_form.errors.items():
                    self.add_error(name if name in self.fields else None, errors)
        return cleaned


# Declared fields, so ModelAdmin's form factory accepts them in fieldsets.
for _spec in settings_spec.SETTINGS:
    InstanceAdminForm.base_fields[_spec.name] = setting_field(_spec)
    InstanceAdminForm.declared_fields[_spec.name] = InstanceAdminForm.base_fields[_spec.name]


class StateChangeInline(TabularInline):
    model = InstanceStateChange
    fields = ("created_at", "state", "phone", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)
    max_num = 0


@admin.register(Instance)
class InstanceAdmin(ModelAdmin):
    form = InstanceAdminForm
    list_display = (
        "id", "name", "owner", "engine", "state", "wid", "lease_owner", "is_suspended", "is_deleted", "created_at",
    )
    list_filter = ("engine", "state", "is_suspended", "is_deleted")
    search_fields = ("=id", "name", "wid", "phone", "account__user__username", "account__name")
    readonly_fields = (
        "id", "owner_link", "engine", "state", "state_changed_at", "wid", "phone", "api_token_masked",
        "webhook_secret_masked", "created_at", "deleted_at", "is_suspended", "diagnosis", "links",
    )
    list_select_related = ("account__user", "lease")
    actions = ["reboot", "logout", "clear_queue", "redeliver_given_up", "rotate_token", "suspend", "unsuspend"]
    inlines = [StateChangeInline]

    def get_fieldsets(self, request: HttpRequest, obj: Instance | None = None) -> Any:
        head: list[Any] = [
            (None, {"fields": ("id", "name", "owner_link", "engine", "state", "state_changed_at", "wid", "phone")}),
            ("Right now", {"fields": ("diagnosis", "links")}),
            ("Secrets (masked)", {"fields": ("api_token_masked", "webhook_secret_masked")}),
            ("Lifecycle", {"fields": ("is_suspended", "created_at", "deleted_at")}),
        ]
        if obj is None:
            return [(None, {"fields": ("name",)})]
        names = [s.name for s in settings_spec.SETTINGS]
        return [*head, ("Settings", {"fields": names, "classes": ("collapse",)})]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["fields"] = ("name", *(s.name for s in settings_spec.SETTINGS)) if obj is not None else ("name",)
        return super().get_form(request, obj, change, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # instances are created by their owner (cabinet or partner API)

    def save_model(self, request: HttpRequest, obj: Instance, form: Any, change: bool) -> None:
        obj.save(update_fields=["name"])
        settings_form = getattr(form, "settings_form", None)
        if settings_form is not None and settings_form.wire:
            services.update_settings(obj, settings_form.changes())

    def delete_model(self, request: HttpRequest, obj: Instance) -> None:
        # Deleting is the partner API's soft delete: history and journals stay.
        services.delete_instance(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset:
            services.delete_instance(instance)

    # --- Columns and read-only fields -------------------------------------------------

    @admin.display(description="owner", ordering="account__user__username")
    def owner(self, obj: Instance) -> str:
        username = obj.account.user.get_username()
        return f"{username} ({obj.account.name})" if obj.account.name and obj.account.name != username else username

    @admin.display(description="owner")
    def owner_link(self, obj: Instance) -> SafeString:
        url = reverse("admin:instances_account_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, self.owner(obj))

    @admin.display(description="apiTokenInstance")
    def api_token_masked(self, obj: Instance) -> str:
        return mask(obj.api_token)

    @admin.display(description="webhook signing secret")
    def webhook_secret_masked(self, obj: Instance) -> str:
        return mask(obj.webhook_secret)

    @admin.display(description="runner")
    def lease_owner(self, obj: Instance) -> str:
        lease = getattr(obj, "lease", None)
        if lease is None or not lease.runner_id:
            return "—"
        if lease.expires_at and lease.expires_at < timezone.now():
            return f"{lease.runner_id} (expired)"
        return lease.runner_id

    @admin.display(description="diagnosis")
    def diagnosis(self, obj: Instance) -> SafeString:
        d = operator.diagnose(obj)
        rows = [
            ("send queue", f"{d.queued} queued, {d.sending} sending"
             + (f", oldest from {d.oldest_queued_at:%Y-%m-%d %H:%M:%S}" if d.oldest_queued_at else "")),
            ("failed sends (24 h)", str(d.failed_24h)),
            ("notifications waiting", f"{d.notifications_queued}"
             + (f" — head tried {d.head_attempts} time(s): webhook deliveries are blocked" if d.head_attempts else "")),
            ("webhooks (1 h)", f"{d.webhook_attempts_1h} attempts, {d.webhook_failures_1h} failed"),
            ("last webhook error", d.last_webhook_error or "—"),
            ("session", f"leased by {d.runner}" if d.runner else "no runner holds this instance's lease"),
        ]
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description="see also")
    def links(self, obj: Instance) -> SafeString:
        pairs = [
            (reverse("admin:messaging_outgoingmessage_changelist") + f"?instance__id__exact={obj.pk}", "send queue"),
            (reverse("admin:journals_notification_changelist") + f"?instance__id__exact={obj.pk}", "notifications"),
            (reverse("admin:journals_webhookattempt_changelist") + f"?instance__id__exact={obj.pk}", "webhook attempts"),
            (reverse("admin:instances_sessionlease_changelist") + f"?q={obj.pk}", "lease"),
            (reverse("admin:instances_account_change", args=[obj.account_id]), "owner's account"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', pairs)

    # --- Actions ---------------------------------------------------------------------

    def _each(self, request: HttpRequest, queryset: QuerySet[Instance], action: Any) -> int:
        """Run ``action`` per instance; an engine failure is reported, not a 500."""
        done = 0
        for instance in queryset:
            try:
                action(instance)
            except (TransportError, webhooks.RedeliveryError) as exc:
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

    @admin.action(description="Clear the send queue")
    def clear_queue(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        removed = sum(messaging_services.clear_messages_queue(instance) for instance in queryset)
        messages.success(request, f"Removed {removed} queued message(s) from {len(queryset)} instance(s).")

    @admin.action(description="Redeliver webhooks that gave up")
    def redeliver_given_up(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        count = 0

        def redeliver(instance: Instance) -> None:
            nonlocal count
            count += webhooks.redeliver_given_up(instance, requested_by="operator (admin)")

        self._each(request, queryset, redeliver)
        messages.success(request, f"Re-queued {count} notification(s) for delivery.")

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

"""The personal cabinet: server-rendered pages, HTMX for in-place updates.

Views are adapters: they check access (``dashboard.access``), validate a form and
call a service. Every instance URL answers 404 for anyone but the owner."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from dashboard import chats, console, forms, usage, webhook_check
from dashboard.access import access_instance, account_of, owned_instances
from engines import registry as engine_registry
from engines.sandbox import Sandbox, SandboxError
from instances import accounts, events, selectors, services, settings_spec
from instances.models import Engine, Instance

View = Callable[..., HttpResponse]


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def instance_view(func: Callable[..., HttpResponse]) -> View:
    """Login required, then ``instance`` replaces ``instance_id`` (404 unless owned)."""

    @login_required
    @wraps(func)
    def wrapper(request: HttpRequest, instance_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
        instance = access_instance(request.user, instance_id)
        return func(request, instance, *args, **kwargs)

    return wrapper


def sandbox_of(instance: Instance) -> Sandbox:
    """The instance's engine sandbox (the emulator's); 404 for engines without one."""
    found = engine_registry.sandbox(instance.engine)
    if found is None:
        raise Http404("The sandbox exists for emulator instances only")
    return found


def page(request: HttpRequest, template: str, instance: Instance, tab: str, **context: Any) -> HttpResponse:
    return render(request, template, {"instance": instance, "tab": tab, **context})


def detail_url(instance: Instance) -> str:
    return reverse("dashboard:instance", args=[instance.id])


# --- Public pages and accounts ---------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html", {"api_url": settings.RELAY_API_URL})


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.DASHBOARD_SIGNUP:
        raise PermissionDenied("Sign-up is closed on this server; ask your operator for an account.")
    if request.user.is_authenticated:
        return redirect("dashboard:instances")
    form = forms.SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        services.ensure_account(user, name=str(form.cleaned_data.get("company") or ""))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Relay! Create your first instance to get started.")
        return redirect("dashboard:instances")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def account(request: HttpRequest, rotate_form: forms.RotatePartnerTokenForm | None = None) -> HttpResponse:
    acc = account_of(request.user)
    context = {
        "account": acc, "api_url": settings.RELAY_API_URL, "tab": "account", "instances": owned_instances(request.user),
        "rotate_form": rotate_form or forms.RotatePartnerTokenForm(prefix="rotate"),
    }
    response = render(request, "dashboard/account.html", context)
    if rotate_form is not None and rotate_form.errors:
        response.status_code = 422
    return response


@login_required
@require_POST
def account_rotate_token(request: HttpRequest) -> HttpResponse:
    form = forms.RotatePartnerTokenForm(request.POST, prefix="rotate")
    if not form.is_valid():
        return account(request, rotate_form=form)
    accounts.rotate_partner_token(account_of(request.user))
    messages.success(request, "New partner token issued. The old one stopped working; update your scripts.")
    return redirect("dashboard:account")


# --- Instances ----------------------------------------------------------------------------------


@login_required
def instance_list(request: HttpRequest) -> HttpResponse:
    account_of(request.user)
    context = {"instances": owned_instances(request.user), "tab": "instances"}
    if is_htmx(request) and request.GET.get("partial") == "rows":
        return render(request, "dashboard/_instance_rows.html", context)
    return render(request, "dashboard/instance_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def instance_create(request: HttpRequest) -> HttpResponse:
    acc = account_of(request.user)
    form = forms.InstanceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            instance = services.create_instance(
                account=acc,
                name=str(form.cleaned_data["name"]).strip(),
                engine=form.cleaned_data["engine"],
                engine_options=form.engine_options(),
            )
        except engine_registry.EngineOptionsInvalid as exc:
            form.add_error(None, f"Check the credentials: {exc}.")
        else:
            events.account_changed(acc.id)
            # Shown only while the instance is unpaired (the page hides it once paired).
            if not engine_registry.spec(instance.engine).connect:
                messages.success(
                    request, f"Instance {instance.id} is ready. Scan the QR code to link a WhatsApp account.",
                    extra_tags="until-paired",
                )
            return redirect(detail_url(instance))
    engines = [
        {"value": value, "label": label, "available": value in form.available}
        for value, label in Engine.choices
    ]
    return render(request, "dashboard/instance_create.html", {"form": form, "engines": engines, "tab": "instances"})


@instance_view
def instance_detail(request: HttpRequest, instance: Instance) -> HttpResponse:
    return page(
        request,
        "dashboard/instance_detail.html",
        instance,
        "overview",
        link_form=forms.LinkPhoneForm(prefix="link"),
        code_form=forms.PairingCodeForm(prefix="code"),
        rename_form=forms.RenameForm(initial={"name": instance.name}),
        api_url=settings.RELAY_API_URL,
        media_url=settings.RELAY_MEDIA_URL,
        engine_facts=engine_registry.describe(instance),
        session=selectors.session_report(instance, timezone.now()),
        now=timezone.now(),
    )


@instance_view
@require_POST
def instance_rename(request: HttpRequest, instance: Instance) -> HttpResponse:
    form = forms.RenameForm(request.POST)
    if form.is_valid():
        services.rename_instance(instance, form.cleaned_data["name"])
        events.account_changed(instance.account_id)
        if not is_htmx(request):
            messages.success(request, "Renamed.")
    if is_htmx(request):
        return render(request, "dashboard/_rename.html", {"instance": instance, "rename_form": form, "saved": form.is_valid()})
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("name", ["Invalid name."])))
    return redirect(detail_url(instance))


@instance_view
@require_http_methods(["GET", "POST"])
def instance_delete(request: HttpRequest, instance: Instance) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("confirm_id") != str(instance.id):
            return page(
                request, "dashboard/instance_delete.html", instance, "overview",
                error="Type the instance id exactly as shown to confirm.",
            )
        services.delete_instance(instance)
        events.account_changed(instance.account_id)
        messages.success(request, f"Instance {instance.id} was deleted. Its token no longer works.")
        return redirect("dashboard:instances")
    return page(request, "dashboard/instance_delete.html", instance, "overview")


@instance_view
@require_POST
def instance_rotate_token(request: HttpRequest, instance: Instance) -> HttpResponse:
    services.update_api_token(instance)
    if is_htmx(request):
        return render(
            request, "dashboard/_credentials.html",
            {"instance": instance, "api_url": settings.RELAY_API_URL, "media_url": settings.RELAY_MEDIA_URL, "rotated": True},
        )
    messages.success(request, "New token issued. The old one stopped working.")
    return redirect(detail_url(instance))


def _pairing_panel(request: HttpRequest, instance: Instance, **context: Any) -> HttpResponse:
    instance.refresh_from_db()
    base = {
        "instance": instance,
        "link_form": forms.LinkPhoneForm(prefix="link"),
        "code_form": forms.PairingCodeForm(prefix="code"),
    }
    base.update(context)
    if is_htmx(request):
        return render(request, "dashboard/_pairing.html", base)
    if context.get("notice"):
        messages.success(request, str(context["notice"]))
    if context.get("error"):
        messages.error(request, str(context["error"]))
    return redirect(detail_url(instance))


@instance_view
@require_POST
def instance_link_phone(request: HttpRequest, instance: Instance) -> HttpResponse:
    sandbox = sandbox_of(instance)
    form = forms.LinkPhoneForm(request.POST, prefix="link")
    if not form.is_valid():
        return _pairing_panel(request, instance, link_form=form, error="Check the phone number.")
    try:
        sandbox.scan_qr(instance, phone=form.cleaned_data["phone"], name=form.cleaned_data["name"])
    except SandboxError as exc:
        return _pairing_panel(request, instance, error=str(exc).capitalize() + ".")
    return _pairing_panel(request, instance, notice=f"+{form.cleaned_data['phone']} scanned the code. Connecting…")


@instance_view
@require_POST
def instance_pairing_code(request: HttpRequest, instance: Instance) -> HttpResponse:
    form = forms.PairingCodeForm(request.POST, prefix="code")
    if not form.is_valid():
        return _pairing_panel(request, instance, code_form=form, error="Check the phone number.")
    try:
        code = services.request_pairing_code(instance, phone=form.cleaned_data["phone"])
    except services.ServiceError as exc:
        return _pairing_panel(request, instance, error=str(exc) + ".")
    return _pairing_panel(request, instance, pairing_code=f"{code[:4]}-{code[4:]}", pairing_phone=form.cleaned_data["phone"])


@instance_view
@require_POST
def instance_confirm_code(request: HttpRequest, instance: Instance) -> HttpResponse:
    """Emulator: the phone types the code (what a real user does on their phone)."""
    try:
        sandbox_of(instance).type_pairing_code(instance, code=str(request.POST.get("code", "")))
    except SandboxError as exc:
        return _pairing_panel(request, instance, error=str(exc).capitalize() + ".")
    return _pairing_panel(request, instance, notice="Code accepted. Connecting…")


@instance_view
@require_POST
def instance_logout(request: HttpRequest, instance: Instance) -> HttpResponse:
    services.logout(instance)
    messages.success(request, "The WhatsApp account was unlinked. Scan a new QR code to link one.")
    return redirect(detail_url(instance))


@instance_view
@require_POST
def instance_reboot(request: HttpRequest, instance: Instance) -> HttpResponse:
    services.reboot(instance)
    messages.success(request, "Restarting the session; it is back in a few seconds.")
    return redirect(detail_url(instance))


# --- Settings ------------------------------------------------------------------------------------


@instance_view
@require_http_methods(["GET", "POST"])
def instance_settings(request: HttpRequest, instance: Instance) -> HttpResponse:
    form = forms.SettingsForm(request.POST or None, instance=instance)
    if request.method == "POST":
        if form.is_valid():
            services.update_settings(instance, form.changes())
            problem = webhook_check.reachability_problem(str(instance.setting("webhookUrl") or ""))
            if problem:
                messages.warning(request, f"Settings saved, but webhooks cannot arrive yet. {problem}")
            else:
                messages.success(request, "Settings saved. They apply immediately.")
            return redirect("dashboard:settings", instance.id)
        messages.error(request, "Some settings need your attention; nothing was saved.")
    return page(
        request, "dashboard/settings.html", instance, "settings", form=form, test_form=forms.WebhookTestForm(),
        webhook_problem=webhook_check.reachability_problem(str(instance.setting("webhookUrl") or "")),
        recommended=settings_spec.RECOMMENDED_NOTIFICATIONS,
    )


@instance_view
@require_POST
def instance_recommended_settings(request: HttpRequest, instance: Instance) -> HttpResponse:
    """GREEN-API's recommended notification set in one click."""
    services.update_settings(instance, forms.recommended_changes())
    messages.success(
        request, "Recommended notifications switched on: incoming messages, statuses, sent messages, state changes, "
        "polls and calls. Adjust any switch below."
    )
    return redirect(reverse("dashboard:settings", args=[instance.id]) + "#group-2")


@instance_view
@require_POST
def instance_rotate_webhook_secret(request: HttpRequest, instance: Instance) -> HttpResponse:
    services.rotate_webhook_secret(instance)
    messages.success(request, "New signing secret issued. Deliveries from now on are signed with it; update your receiver.")
    return redirect(reverse("dashboard:settings", args=[instance.id]) + "#signing-secret")


@instance_view
@require_POST
def instance_test_webhook(request: HttpRequest, instance: Instance) -> HttpResponse:
    form = forms.WebhookTestForm({"url": request.POST.get("url") or request.POST.get("webhookUrl", "")})
    url = ""
    error = ""
    if form.is_valid():
        url = form.cleaned_data["url"] or str(instance.setting("webhookUrl") or "")
        if not url:
            error = "Enter a URL or save a webhook URL first."
    else:
        error = " ".join(str(e) for e in form.errors.get("url", ["Enter a valid URL."]))
    result = webhook_check.send_test_webhook(instance, url) if not error else None
    return render(request, "dashboard/_webhook_result.html", {"result": result, "error": error, "instance": instance})


# --- API console ----------------------------------------------------------------------------------


def _grouped_methods() -> list[tuple[str, list[console.ConsoleMethod]]]:
    groups: dict[str, list[console.ConsoleMethod]] = {}
    for m in console.methods():
        groups.setdefault(m.section, []).append(m)
    return list(groups.items())


@instance_view
def api_console(request: HttpRequest, instance: Instance) -> HttpResponse:
    name = request.GET.get("method") or "sendMessage"
    method = console.method_by_name(name) or console.methods()[0]
    context = {"method": method, "values": {}, "errors": {}, "known_chats": chats.known_chats(instance)}
    if is_htmx(request):
        return render(request, "dashboard/_console_form.html", {"instance": instance, **context})
    return page(request, "dashboard/console.html", instance, "console", groups=_grouped_methods(), **context)


@instance_view
@require_POST
def api_console_send(request: HttpRequest, instance: Instance) -> HttpResponse:
    method = console.method_by_name(str(request.POST.get("__method", "")))
    if method is None:
        raise Http404("Unknown method")
    values = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
    try:
        built = console.build_request(method, request.POST, request.FILES)
    except console.InputError as exc:
        response = render(
            request, "dashboard/_console_result.html", {"instance": instance, "method": method, "errors": exc.errors}
        )
        response.status_code = 422 if not is_htmx(request) else 200
        return response
    result = console.execute(instance, method, built)
    instance.refresh_from_db()
    return render(
        request, "dashboard/_console_result.html",
        {"instance": instance, "method": method, "result": result, "values": values, "errors": {}},
    )


# --- Usage ------------------------------------------------------------------------------------------


@instance_view
def usage_page(request: HttpRequest, instance: Instance) -> HttpResponse:
    return page(request, "dashboard/usage.html", instance, "usage", series=usage.usage(instance), days=usage.DAYS)

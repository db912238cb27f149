"""The Statuses tab: post text, picture/video and voice statuses (the same
validation and queue as the wire methods), see who got and viewed each, see the
statuses contacts posted, delete one, and (emulator) make a simulated contact post."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.views import instance_view, page, sandbox_of
from engines import registry as engine_registry
from engines.sandbox import SandboxError
from instances.http import BadRequest, validate
from instances.models import Instance, State
from journals.chats import ChatError
from statuses import api, selectors, services

KINDS = {"text": api.SendTextStatus, "media": api.SendMediaStatus, "voice": api.SendVoiceStatus}
FIELDS = ("message", "backgroundColor", "font", "urlFile", "fileName", "caption")


def _page(request: HttpRequest, instance: Instance, status: int = 200, **context: Any) -> HttpResponse:
    outgoing = selectors.outgoing_statuses(instance)
    incoming = selectors.incoming_statuses(instance)
    viewers = selectors.statistics_of(instance, [item["idMessage"] for item in outgoing])
    for item in outgoing:
        item["viewers"] = viewers[item["idMessage"]]
    for item in outgoing + incoming:
        # Only a checked #RRGGBB reaches the style attribute (an engine's colour is
        # not ours to trust).
        color = str((item.get("extendedTextMessage") or {}).get("backgroundColor", ""))
        item["swatch"] = color if api.COLOR_RE.match(color) else "#000000"
    base: dict[str, Any] = {
        "outgoing": outgoing,
        "incoming": incoming,
        "fonts": api.FONTS,
        "kind": "text",
        "values": {},
        "error": "",
        "sandbox": engine_registry.sandbox(instance.engine) is not None,
        "paired": instance.state == State.AUTHORIZED and bool(instance.phone),
    }
    base.update(context)
    response = page(request, "dashboard/statuses.html", instance, "statuses", **base)
    response.status_code = status
    return response


@instance_view
def statuses_page(request: HttpRequest, instance: Instance) -> HttpResponse:
    return _page(request, instance)


@instance_view
@require_POST
def statuses_post(request: HttpRequest, instance: Instance) -> HttpResponse:
    """Post a status: the form's fields are the wire method's body."""
    kind = str(request.POST.get("kind", "text"))
    view = KINDS.get(kind, api.SendTextStatus)
    values = {k: str(request.POST.get(k, "")).strip() for k in FIELDS}
    form = view.Input
    assert form is not None
    body: dict[str, Any] = {k: v for k, v in values.items() if v and k in form().fields}
    participants = [p.strip() for p in str(request.POST.get("participants", "")).replace("\n", ",").split(",")]
    if any(participants):
        body["participants"] = [p for p in participants if p]
    try:
        composed = view.compose(validate(form, body))
        id_message = api.queue_status(instance, view.wire_name, composed)
    except BadRequest as exc:
        return _page(request, instance, status=422, error=str(exc), kind=kind, values=values)
    messages.success(request, f"Status {id_message} queued: it is posted when the queue reaches it.")
    return redirect("dashboard:statuses", instance.id)


@instance_view
@require_POST
def statuses_delete(request: HttpRequest, instance: Instance) -> HttpResponse:
    id_message = str(request.POST.get("idMessage", ""))
    try:
        services.delete_status(instance, id_message=id_message)
    except (services.StatusError, ChatError) as exc:
        return _page(request, instance, status=409, error=str(exc))
    messages.success(request, f"Status {id_message} deleted.")
    return redirect("dashboard:statuses", instance.id)


@instance_view
@require_POST
def statuses_contact(request: HttpRequest, instance: Instance) -> HttpResponse:
    """Sandbox: a simulated contact posts a text status the instance may see."""
    sandbox = sandbox_of(instance)
    phone = "".join(ch for ch in str(request.POST.get("phone", "")) if ch.isdigit())
    fields = {
        "message": str(request.POST.get("message", "")).strip(),
        "backgroundColor": str(request.POST.get("backgroundColor", "")).strip(),
        "font": str(request.POST.get("font", "")).strip(),
    }
    error = ""
    if not 7 <= len(phone) <= 15:
        error = "The contact's number must have 7 to 15 digits."
    elif not fields["message"]:
        error = "Write the status text."
    if not error:
        try:
            sandbox.contact_posts_status(
                instance, phone=phone, kind="text", fields=fields, name=str(request.POST.get("name", ""))
            )
        except SandboxError as exc:
            error = str(exc)
    if error:
        return _page(request, instance, status=422, contact_error=error)
    messages.success(request, f"+{phone} posted a status; it arrives within a tick of the session runner.")
    return redirect("dashboard:statuses", instance.id)

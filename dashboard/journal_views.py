"""Chats, the notification queue and the webhook delivery log (with redelivery).

Each page has a partial (``?partial=rows`` over HTMX) that re-reads itself when the
instance socket says its topic changed (``dashboard.signals`` → ``instances.events``)
and, as a fallback for writes that fire no signal, every ``LIVE_FALLBACK_SECONDS``."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from PIL import Image

from dashboard import chats, console, deliveries, forms
from dashboard.groups import group_panel
from dashboard.views import instance_view, is_htmx, page, sandbox_of
from engines.sandbox import SandboxError
from instances.models import Instance
from journals.models import Notification, NotificationState

# A lost or never-sent push (raw-SQL fast lane, QuerySet.update, bulk_create) delays
# a live page by at most this long.
LIVE_FALLBACK_SECONDS = 15
NOTIFICATION_PAGE = 100


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = str(request.GET.get(name, "")).strip()
    return int(value) if value.isdigit() else None


# --- Chats --------------------------------------------------------------------------------


@instance_view
def chat_list(request: HttpRequest, instance: Instance) -> HttpResponse:
    context = {"chats": chats.chat_list(instance), "fallback_seconds": LIVE_FALLBACK_SECONDS}
    if is_htmx(request) and request.GET.get("partial") == "rows":
        return render(request, "dashboard/_chat_rows.html", {"instance": instance, **context})
    return page(request, "dashboard/chats.html", instance, "chats", **context)


@instance_view
def chat_view(request: HttpRequest, instance: Instance, chat_id: str) -> HttpResponse:
    bubbles = chats.chat_messages(instance, chat_id)
    context = {"chat_id": chat_id, "bubbles": bubbles, "fallback_seconds": LIVE_FALLBACK_SECONDS}
    if is_htmx(request):
        return render(request, "dashboard/_bubbles.html", {"instance": instance, **context})
    group = group_panel(instance, chat_id)
    return page(
        request, "dashboard/chat.html", instance, "chats", group=group, group_actions=GROUP_SANDBOX_ACTIONS,
        chat_name=chats.chat_title(instance, chat_id), reply_form=forms.ReplyForm(), **context,
    )


# What a simulated member can do from the group chat page (emulator instances).
GROUP_SANDBOX_ACTIONS = (
    ("post", "Post a message"),
    ("add", "Add the instance"),
    ("remove", "Remove the instance"),
    ("promote", "Make the instance admin"),
    ("demote", "Dismiss the instance as admin"),
    ("rename", "Rename the group"),
    ("picture", "Change the group picture"),
    ("leave", "Leave the group"),
)


def sandbox_picture(seed: str) -> bytes:
    """A picture a simulated member can set without an upload: one colour derived from
    ``seed`` (the text box), so two changes in a row are visibly different."""
    digest = hashlib.sha256(seed.encode()).digest()
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (digest[0], digest[1], digest[2])).save(out, format="PNG")
    return out.getvalue()


@require_POST
@instance_view
def chat_group_action(request: HttpRequest, instance: Instance, chat_id: str) -> HttpResponse:
    """A simulated member acts in the group (sandbox); the session shows the result."""
    sandbox = sandbox_of(instance)
    phone = str(request.POST.get("phone", "")).lstrip("+").strip()
    action = str(request.POST.get("action", ""))
    text = str(request.POST.get("text", "")).strip()
    try:
        if not phone.isdigit():
            raise SandboxError("choose the member who acts")
        if action == "post":
            if not text:
                raise SandboxError("write the message")
            sandbox.contact_posts_in_group(
                instance, group_id=chat_id, phone=phone, kind="textMessage", fields={"message": text[:20_000]}
            )
        elif action in dict(GROUP_SANDBOX_ACTIONS):
            if action == "rename" and not text:
                raise SandboxError("write the new subject")
            picture = sandbox_picture(text or f"{chat_id}{phone}") if action == "picture" else b""
            sandbox.contact_acts_in_group(
                instance, group_id=chat_id, phone=phone, action=action, subject=text[:100], picture=picture
            )
        else:
            raise SandboxError("unknown action")
    except SandboxError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Done: the instance's session takes it in within a moment.")
    return redirect("dashboard:chat", instance.id, chat_id)


@instance_view
@require_POST
def chat_reply(request: HttpRequest, instance: Instance, chat_id: str) -> HttpResponse:
    """Reply from the chat view: a real ``sendMessage`` through the API's own
    handler (the console's path), so it is queued, journalled and limited exactly
    like a call from the customer's code."""
    form = forms.ReplyForm(request.POST)
    error = ""
    if form.is_valid():
        error = console.send_text(instance, chat_id, form.cleaned_data["message"])
    else:
        error = "Write a message first."
    if is_htmx(request):
        context = {"instance": instance, "chat_id": chat_id, "bubbles": chats.chat_messages(instance, chat_id)}
        response = render(request, "dashboard/_bubbles.html", context)
        if error:
            response = render(request, "dashboard/_reply_error.html", {"error": error})
            response["HX-Retarget"] = "#reply-error"
            response["HX-Reswap"] = "innerHTML"
        return response
    if error:
        messages.error(request, error)
    return redirect(reverse("dashboard:chat", args=[instance.id, chat_id]) + "#reply")


# --- Notification queue ---------------------------------------------------------------------


@instance_view
def notifications(request: HttpRequest, instance: Instance) -> HttpResponse:
    state = request.GET.get("state", "queued")
    if state not in NotificationState.values:
        state = "queued"
    before = _int_param(request, "before")
    rows = Notification.objects.filter(instance=instance, state=state)
    if before is not None:
        rows = rows.filter(receipt_id__lt=before)
    page_rows = list(rows.order_by("-receipt_id")[: NOTIFICATION_PAGE + 1])
    next_before = page_rows[NOTIFICATION_PAGE - 1].receipt_id if len(page_rows) > NOTIFICATION_PAGE else None
    counts = {s: Notification.objects.filter(instance=instance, state=s).count() for s in NotificationState.values}
    context = {
        "rows": page_rows[:NOTIFICATION_PAGE],
        "state": state,
        "counts": counts,
        "states": NotificationState.values,
        "before": before,
        "next_before": next_before,
        "fallback_seconds": LIVE_FALLBACK_SECONDS,
    }
    if is_htmx(request) and request.GET.get("partial") == "rows":
        return render(request, "dashboard/_notification_rows.html", {"instance": instance, **context})
    return page(request, "dashboard/notifications.html", instance, "notifications", **context)


# --- Webhook delivery log ----------------------------------------------------------------------


def _log_url(instance: Instance, status: str = "") -> str:
    url = reverse("dashboard:webhooks", args=[instance.id])
    return url + ("?" + urlencode({"status": status}) if status else "")


@instance_view
def webhook_log(request: HttpRequest, instance: Instance) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in dict(deliveries.STATUS_FILTERS):
        status = ""
    before = _int_param(request, "before")
    result = deliveries.attempts_page(instance, status=status, before=before)
    context = {
        "rows": result.rows,
        "next_before": result.next_before,
        "before": before,
        "status": status,
        "filters": deliveries.STATUS_FILTERS,
        "has_webhook": bool(str(instance.setting("webhookUrl") or "").strip()),
        "fallback_seconds": LIVE_FALLBACK_SECONDS,
    }
    if is_htmx(request) and request.GET.get("partial") == "rows":
        return render(request, "dashboard/_webhook_rows.html", {"instance": instance, **context})
    form = forms.RedeliverForm(prefix="range")
    return page(request, "dashboard/webhooks.html", instance, "webhooks", range_form=form, **context)


@instance_view
@require_POST
def webhook_redeliver(request: HttpRequest, instance: Instance) -> HttpResponse:
    """One notification (a row's button) or a receiptId range (the form)."""
    status = str(request.POST.get("status", ""))
    form = forms.RedeliverForm(request.POST, prefix="range")
    if not form.is_valid():
        result = deliveries.attempts_page(instance, status=status if status in ("ok", "failed") else "")
        response = page(
            request, "dashboard/webhooks.html", instance, "webhooks", range_form=form, rows=result.rows,
            next_before=result.next_before, before=None, status=status, filters=deliveries.STATUS_FILTERS,
            has_webhook=True, fallback_seconds=LIVE_FALLBACK_SECONDS,
        )
        response.status_code = 422
        return response
    low, high = int(form.cleaned_data["receipt_from"]), int(form.cleaned_data["receipt_to"])
    label = f"receiptId {low}" if low == high else f"receiptIds {low}–{high}"
    try:
        count = deliveries.redeliver(instance, low, high)
    except deliveries.RedeliveryError as exc:
        hint = " Set a webhook URL in Settings first." if "webhookUrl" in str(exc) else ""
        messages.error(request, f"Cannot redeliver: {exc}.{hint}")
        return redirect(_log_url(instance, status))
    if count:
        messages.success(
            request,
            f"{count} notification{'s' if count != 1 else ''} ({label}) queued again; "
            "they go out first, ahead of newer ones.",
        )
    else:
        messages.info(
            request,
            f"Nothing to redeliver for {label}: only delivered or given-up notifications can be sent again "
            "(queued ones are still on their way).",
        )
    return redirect(_log_url(instance, status))

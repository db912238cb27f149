"""Template helpers for the cabinet: state badges, ticks, charts."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dashboard import chats, deliveries, usage
from instances.models import Instance

register = template.Library()

STATE_LABELS = {
    "authorized": ("ok", "Authorized"),
    "notAuthorized": ("idle", "Not authorized"),
    "starting": ("busy", "Starting"),
    "pendingCode": ("busy", "Waiting for code"),
    "sleepMode": ("warn", "Sleep mode"),
    "yellowCard": ("warn", "Yellow card"),
    "blocked": ("bad", "Blocked"),
}


def state_badge_parts(state: str) -> tuple[str, str]:
    return STATE_LABELS.get(state, ("idle", state))


@register.simple_tag
def state_badge(instance_id: int, state: str) -> SafeString:
    """A badge that dashboard.js keeps current (data-state-badge)."""
    tone, label = state_badge_parts(state)
    return format_html(
        '<span class="badge badge-{}" data-state-badge="{}" data-state="{}" role="status" aria-live="polite">'
        '<span class="dot" aria-hidden="true"></span><span class="badge-label">{}</span></span>',
        tone, instance_id, state, label,
    )


# Session health (instances.selectors.session_report): tone and label of each value.
HEALTH_LABELS = {
    "healthy": ("ok", "Healthy"),
    "silent": ("bad", "Silent: restarting"),
    "dialing": ("busy", "Dialing"),
    "backingOff": ("warn", "Backing off"),
    "stopped": ("idle", "Stopped"),
}


@register.simple_tag
def health_badge(health: str) -> SafeString:
    tone, label = HEALTH_LABELS.get(health, ("idle", health))
    return format_html(
        '<span class="badge badge-{}" data-health="{}"><span class="dot" aria-hidden="true"></span>'
        '<span class="badge-label">{}</span></span>',
        tone, health, label,
    )


@register.simple_tag
def ticks(status: str) -> SafeString:
    css, glyph, label = chats.ticks(status)
    if not glyph:
        return SafeString("")
    return format_html(
        '<span class="ticks ticks-{}" title="{}" aria-label="{}" data-status="{}">{}</span>', css, label, label, status, glyph
    )


@register.simple_tag
def chart(series: usage.Series) -> SafeString:
    return usage.bar_chart(series)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def phone_of(chat_id: str) -> str:
    head = chat_id.split("@", 1)[0]
    return f"+{head}" if head.isdigit() and chat_id.endswith("@c.us") else chat_id


@register.filter
def state_tone(state: str) -> str:
    return state_badge_parts(state)[0]


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")


# Line icons (24×24, stroke = currentColor): no icon font or emoji font needed.
ICONS = {
    "phone": '<rect x="6" y="2.5" width="12" height="19" rx="2.5"/><path d="M10.5 18.5h3"/>',
    "chat": '<path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.5 4v-4H6.5A2.5 2.5 0 0 1 4 13.5z"/><path d="M8 8.5h8M8 12h5"/>',
    "bell": '<path d="M6 16V11a6 6 0 1 1 12 0v5l1.5 2h-15z"/><path d="M10 20.5a2 2 0 0 0 4 0"/>',
    "send": '<path d="M3.5 11.5 20 4l-6.5 16-3-6.5z"/><path d="m10.5 13.5 9.5-9.5"/>',
    "flask": '<path d="M9.5 3h5M10.5 3v6L5 19a1.5 1.5 0 0 0 1.3 2h11.4a1.5 1.5 0 0 0 1.3-2l-5.5-10V3"/><path d="M7.5 15h9"/>',
    "users": '<circle cx="9" cy="8.5" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0"/><path d="M16 5.2a3.5 3.5 0 0 1 0 6.6M18 14.5a6.5 6.5 0 0 1 3.5 5.5"/>',
    "file": '<path d="M6 2.5h8l4 4V21.5H6z"/><path d="M14 2.5v4h4"/>',
    "chart": '<path d="M4 20.5h16"/><path d="M7 17V11M12 17V6M17 17v-4"/>',
}


@register.simple_tag
def icon(name: str, size: int = 24) -> SafeString:
    return format_html(
        '<svg class="icon" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="1.7" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">{}</svg>',
        size, size, SafeString(ICONS[name]),
    )


@register.inclusion_tag("dashboard/_webhook_blocked.html")
def webhook_blocked(instance: Instance) -> dict[str, Any]:
    """A banner when the webhook queue waits behind a failing notification."""
    return {"instance": instance, "blocked": deliveries.blocked(instance)}

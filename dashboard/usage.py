"""Usage figures per day and their charts as inline SVG (rendered here, no JS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from instances.models import Instance
from journals.models import Direction, JournalMessage, WebhookAttempt
from messaging.models import OutgoingMessage

DAYS = 14
LATENCY_SAMPLE_LIMIT = 20_000


@dataclass(frozen=True)
class Series:
    title: str
    unit: str
    points: list[tuple[date, float | None]]  # None: no data that day

    @property
    def total(self) -> float:
        return sum(v for _, v in self.points if v is not None)

    @property
    def has_data(self) -> bool:
        return any(v for _, v in self.points)


def _days(today: date) -> list[date]:
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _since(today: date) -> datetime:
    return datetime.combine(today - timedelta(days=DAYS - 1), time.min, tzinfo=UTC)


def _per_day(rows: object, days: list[date]) -> list[tuple[date, float | None]]:
    counts = {r["day"]: r["n"] for r in rows}  # type: ignore[attr-defined]
    return [(d, float(counts.get(d, 0))) for d in days]


def usage(instance: Instance, today: date | None = None) -> list[Series]:
    """Sent, received, delivery latency and webhook success over the last 14 days (UTC)."""
    today = today or timezone.now().astimezone(UTC).date()
    days = _days(today)
    since = _since(today)
    utc = UTC
    sent = (
        OutgoingMessage.objects.filter(instance=instance, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=utc))
        .values("day")
        .annotate(n=Count("id"))
    )
    received = (
        JournalMessage.objects.filter(instance=instance, direction=Direction.INCOMING, timestamp__gte=since)
        .exclude(type_message="pollUpdateMessage")
        .annotate(day=TruncDate("timestamp", tzinfo=utc))
        .values("day")
        .annotate(n=Count("id"))
    )
    # Delivery latency: sent → delivered, averaged per day in Python (portable across
    # SQLite and PostgreSQL duration arithmetic).
    sums: dict[date, list[float]] = {}
    for sent_at, delivered_at in OutgoingMessage.objects.filter(
        instance=instance, sent_at__gte=since, delivered_at__isnull=False
    ).values_list("sent_at", "delivered_at")[:LATENCY_SAMPLE_LIMIT]:
        if sent_at is None or delivered_at is None:
            continue
        day = sent_at.astimezone(utc).date()
        sums.setdefault(day, []).append(max(0.0, (delivered_at - sent_at).total_seconds()))
    latency: list[tuple[date, float | None]] = [
        (d, (sum(sums[d]) / len(sums[d])) if d in sums else None) for d in days
    ]
    attempts = {
        r["day"]: (r["ok"], r["n"])
        for r in WebhookAttempt.objects.filter(instance=instance, started_at__gte=since)
        .annotate(day=TruncDate("started_at", tzinfo=utc))
        .values("day")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(ok=True)))
    }
    success: list[tuple[date, float | None]] = [
        (d, (100.0 * attempts[d][0] / attempts[d][1]) if d in attempts and attempts[d][1] else None) for d in days
    ]
    return [
        Series("Messages sent", "messages", _per_day(sent, days)),
        Series("Messages received", "messages", _per_day(received, days)),
        Series("Average delivery time", "s", latency),
        Series("Webhook success rate", "%", success),
    ]


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "s":
        return f"{value:.1f} s"
    return f"{value:.0f}"


def bar_chart(series: Series, *, width: int = 560, height: int = 180) -> SafeString:
    """An accessible bar chart: role=img with a summary label and a <title> per bar."""
    left, bottom, top = 36, 22, 10
    plot_w, plot_h = width - left - 6, height - bottom - top
    values = [v for _, v in series.points if v is not None]
    peak = max(values) if values else 0.0
    if series.unit == "%":
        peak = 100.0
    peak = peak or 1.0
    n = len(series.points)
    slot = plot_w / n
    bar_w = max(4.0, slot * 0.62)
    bars = []
    for i, (day, value) in enumerate(series.points):
        x = left + i * slot + (slot - bar_w) / 2
        label = f"{day:%b %d}: " + ("no data" if value is None else _fmt(value, series.unit))
        if value is None:
            bars.append((f"{x:.1f}", f"{top + plot_h - 2:.1f}", f"{bar_w:.1f}", "2", "bar bar-empty", label))
            continue
        h = max(1.0 if value else 0.0, plot_h * value / peak)
        bars.append((f"{x:.1f}", f"{top + plot_h - h:.1f}", f"{bar_w:.1f}", f"{h:.1f}", "bar", label))
    rects = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" rx="2" class="{}"><title>{}</title></rect>', bars
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
        (
            (f"{left + i * slot + slot / 2:.1f}", str(height - 6), f"{day:%d %b}")
            for i, (day, _) in enumerate(series.points)
            if i % 2 == (n - 1) % 2
        ),
    )
    grid = format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/>'
        '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>'
        '<text x="{}" y="{}" class="axis" text-anchor="end">0</text>',
        left, top, width - 6, top, left, top + plot_h, width - 6, top + plot_h,
        left - 4, top + 4, _fmt(peak, series.unit), left - 4, top + plot_h + 4,
    )
    summary = f"{series.title}, last {n} days: " + ", ".join(
        f"{d:%b %d} {'no data' if v is None else _fmt(v, series.unit)}" for d, v in series.points
    )
    svg = format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">{}{}{}</svg>',
        width, height, summary, grid, rects, ticks,
    )
    return mark_safe(svg)  # noqa: S308 - every piece above went through format_html

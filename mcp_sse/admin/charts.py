"""Small SVG charts drawn on the server: the dashboard needs no script and no outside asset.

Each function returns inline SVG markup (``SafeString``); every piece of text in it is escaped.
Colours come from CSS classes (``mcp-ok``, ``mcp-err``, ...) defined in
``static/mcp_sse/admin.css``, so the charts follow the admin's light and dark themes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * power:
            return float(factor * power)
    return float(10 * power)


def format_number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _svg(width: int, height: int, label: str, body: list[str]) -> SafeString:
    return mark_safe(  # every interpolated text went through escape()
        f'<svg class="mcp-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


@dataclass
class TimePoint:
    start: datetime
    ok: int
    errors: int


def calls_over_time(points: Sequence[TimePoint], *, label: str, time_format: str = "%H:%M") -> SafeString:
    """Stacked columns per time bucket: successful calls below, errors on top."""
    width, height = 900, 240
    left, right, top, bottom = 48, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = nice_ceiling(max((p.ok + p.errors for p in points), default=0))
    body: list[str] = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        body.append(f'<line class="mcp-grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        body.append(
            f'<text class="mcp-axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(peak * fraction))}</text>"
        )
    count = max(1, len(points))
    slot = plot_w / count
    bar = max(1.0, slot * 0.8)
    label_every = max(1, math.ceil(count / 12))
    for index, point in enumerate(points):
        x = left + index * slot + (slot - bar) / 2
        ok_h = plot_h * point.ok / peak
        err_h = plot_h * point.errors / peak
        when = point.start.strftime(time_format)
        tip = escape(f"{when}: {point.ok + point.errors} calls, {point.errors} errors")
        body.append(f"<g><title>{tip}</title>")
        if point.ok:
            body.append(
                f'<rect class="mcp-ok" x="{x:.1f}" y="{top + plot_h - ok_h:.1f}" '
                f'width="{bar:.1f}" height="{ok_h:.1f}"/>'
            )
        if point.errors:
            body.append(
                f'<rect class="mcp-err" x="{x:.1f}" y="{top + plot_h - ok_h - err_h:.1f}" '
                f'width="{bar:.1f}" height="{err_h:.1f}"/>'
            )
        # An invisible full-height target, so a hover works on empty buckets too.
        body.append(
            f'<rect class="mcp-hit" x="{left + index * slot:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}"/></g>'
        )
        if index % label_every == 0:
            body.append(
                f'<text class="mcp-axis" x="{x + bar / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                f"{escape(when)}</text>"
            )
    body.append(
        f'<line class="mcp-baseline" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    return _svg(width, height, label, body)


@dataclass
class Series:
    name: str
    css_class: str


# Narrowest bar drawn for a non-zero value: a small figure next to a dominant one stays visible.
MIN_BAR_WIDTH = 4.0


def horizontal_bars(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[Series],
    *,
    label: str,
    unit: str = "",
    peak: float | None = None,
    texts: Sequence[Sequence[str]] | None = None,
    empty_text: str = "No calls in this period.",
) -> SafeString:
    """One group of horizontal bars per row (e.g. p50 and p95 per tool), with values printed.

    ``peak`` fixes the axis maximum (100 for percentages) instead of deriving it from the
    largest value; ``texts`` replaces the printed value of each bar (per row, per series).
    """
    bar_h, gap, group_gap = 12, 2, 10
    # Room right of the longest bar for its printed value (about 7 px per character).
    longest = max((len(text) for row in texts for text in row), default=0) if texts is not None else 0
    label_w, value_w, plot_w = 190, max(80, 7 * longest + 8), 560
    width = label_w + plot_w + value_w
    group_h = len(series) * (bar_h + gap) + group_gap
    legend_h = 22
    height = legend_h + max(1, len(rows)) * group_h + 4
    if peak is None:
        peak = nice_ceiling(max((v for _, values in rows for v in values if v is not None), default=0))
    body: list[str] = []
    x = label_w
    for item in series:
        body.append(f'<rect class="{escape(item.css_class)}" x="{x}" y="4" width="12" height="12"/>')
        body.append(f'<text class="mcp-axis" x="{x + 16}" y="14">{escape(item.name)}</text>')
        x += 24 + 8 * len(item.name)
    if not rows:
        body.append(f'<text class="mcp-axis" x="{label_w}" y="{legend_h + 14}">{escape(empty_text)}</text>')
    for index, (name, values) in enumerate(rows):
        y0 = legend_h + index * group_h
        shown = name if len(name) <= 28 else name[:27] + "…"
        body.append(
            f'<text class="mcp-label" x="{label_w - 8}" y="{y0 + len(series) * (bar_h + gap) / 2 + 4:.1f}" '
            f'text-anchor="end"><title>{escape(name)}</title>{escape(shown)}</text>'
        )
        for position, (item, value) in enumerate(zip(series, values, strict=False)):
            y = y0 + position * (bar_h + gap)
            if value is None:
                continue
            w = max(MIN_BAR_WIDTH, plot_w * min(value, peak) / peak) if value else 0.0
            text = texts[index][position] if texts is not None else f"{format_number(value)}{unit}"
            body.append(
                f"<g><title>{escape(f'{name} {item.name}: {text}')}</title>"
                f'<rect class="{escape(item.css_class)}" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}"/>'
                f'<text class="mcp-value" x="{label_w + w + 4:.1f}" y="{y + bar_h - 2}">{escape(text)}</text></g>'
            )
    return _svg(width, height, label, body)

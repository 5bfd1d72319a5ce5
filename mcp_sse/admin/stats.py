"""Call-log figures for the admin: counts, error rates and latency percentiles per tool.

Everything is computed in the database with one grouped query per figure, so the cost does not
grow with the number of tools on a page. Percentiles use window functions (ROW_NUMBER and
COUNT over each tool's calls ordered by duration) and the nearest-rank definition: the p-th
percentile is the smallest duration with at least p% of the calls at or below it. Window
functions exist on SQLite (3.25+) and PostgreSQL alike, so both run the same query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber, Trunc
from django.utils import timezone

from ..models import CallLog, Tool

# The call-log method that records each kind of Tool row.
METHOD_OF_KIND = {
    "function": "tools/call",
    "model": "tools/call",
    "resource": "resources/read",
    "template": "resources/read",
    "prompt": "prompts/get",
}
# Outcomes counted as errors. A cancellation is the client's choice, not a failure.
ERROR_OUTCOMES = (
    CallLog.Outcome.TOOL_ERROR,
    CallLog.Outcome.PROTOCOL_ERROR,
    CallLog.Outcome.DENIED,
    CallLog.Outcome.TIMED_OUT,
)
ERRORS = Q(outcome__in=ERROR_OUTCOMES)
# Methods whose call-log "tool" is a registered name (not a URI a template may have matched).
NAMED_METHODS = ("tools/call", "prompts/get")

Key = tuple[str, str]  # (method, tool name)


@dataclass
class ToolStats:
    calls: int = 0
    errors: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        """Errors as a fraction of calls; None without calls."""
        return self.errors / self.calls if self.calls else None


def since_hours(hours: int) -> datetime:
    return timezone.now() - timedelta(hours=hours)


def calls_since(since: datetime, keys: Iterable[Key] | None = None) -> QuerySet[CallLog]:
    """Call-log rows from ``since`` on, optionally only for the given (method, name) keys."""
    rows = CallLog.objects.filter(when__gte=since)
    if keys is not None:
        wanted = list(keys)
        rows = rows.filter(tool__in={name for _, name in wanted}, method__in={method for method, _ in wanted})
    return rows


def percentile(rows: QuerySet[CallLog], percent: int) -> dict[Key, float]:
    """Nearest-rank ``percent``-th percentile of ``duration_ms`` per (method, tool), in one query."""
    partition = [F("method"), F("tool")]
    ranked = (
        rows.order_by()
        .annotate(
            position=Window(RowNumber(), partition_by=partition, order_by=[F("duration_ms").asc(), F("id").asc()]),
            total=Window(Count("id"), partition_by=partition),
        )
        # position is the nearest rank when position*100 >= percent*total > (position-1)*100:
        # integer arithmetic, so both databases agree without a CEIL function.
        .annotate(excess=F("position") * 100 - F("total") * percent)
        .filter(excess__gte=0, excess__lt=100)
        .values_list("method", "tool", "duration_ms")
    )
    return {(method, tool): float(duration) for method, tool, duration in ranked}


def tool_stats(
    since: datetime, keys: Iterable[Key] | None = None, percentiles: tuple[int, ...] = (50, 95)
) -> dict[Key, ToolStats]:
    """Calls, errors, mean/max and the asked-for percentiles (50 and/or 95) per (method, tool).

    Each percentile is one window-function pass over the period's rows: ask only for those shown.
    """
    rows = calls_since(since, keys)
    stats: dict[Key, ToolStats] = {}
    grouped = (
        rows.order_by()
        .values("method", "tool")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=ERRORS),
            mean=Avg("duration_ms"),
            slowest=Max("duration_ms"),
        )
    )
    for row in grouped:
        stats[(row["method"], row["tool"])] = ToolStats(
            calls=row["calls"], errors=row["errors"], mean_ms=row["mean"], max_ms=row["slowest"]
        )
    if stats and 50 in percentiles:
        for key, value in percentile(rows, 50).items():
            stats[key].p50_ms = value
    if stats and 95 in percentiles:
        for key, value in percentile(rows, 95).items():
            stats[key].p95_ms = value
    return stats


def overall(since: datetime) -> dict[str, Any]:
    """Totals across all tools: calls, errors, error rate, p95, distinct tokens and sessions."""
    rows = calls_since(since)
    totals = rows.aggregate(
        calls=Count("id"),
        errors=Count("id", filter=ERRORS),
        tokens=Count("token", distinct=True),
        sessions=Count("session_id", distinct=True, filter=~Q(session_id="")),
    )
    p95: float | None = None
    if totals["calls"]:
        # Overall p95 over all durations: rank within one partition (a constant expression).
        ranked = (
            rows.order_by()
            .annotate(
                position=Window(RowNumber(), order_by=[F("duration_ms").asc(), F("id").asc()]),
                total=Window(Count("id")),
            )
            .annotate(excess=F("position") * 100 - F("total") * 95)
            .filter(excess__gte=0, excess__lt=100)
            .values_list("duration_ms", flat=True)
        )
        found = list(ranked[:1])
        p95 = float(found[0]) if found else None
    totals["error_rate"] = totals["errors"] / totals["calls"] if totals["calls"] else None
    totals["p95_ms"] = p95
    return totals


@dataclass
class Bucket:
    start: datetime
    calls: int = 0
    errors: int = 0


def timeline(since: datetime, until: datetime, unit: str) -> list[Bucket]:
    """Calls and errors per ``unit`` ("minute" or "hour") from ``since`` to ``until``, gaps filled."""
    step = timedelta(minutes=1) if unit == "minute" else timedelta(hours=1)
    grouped = (
        calls_since(since)
        .filter(when__lte=until)
        .order_by()
        .annotate(bucket=Trunc("when", unit, tzinfo=UTC))
        .values("bucket")
        .annotate(calls=Count("id"), errors=Count("id", filter=ERRORS))
    )
    found = {row["bucket"]: row for row in grouped}
    start = _truncate(since, unit)
    buckets: list[Bucket] = []
    moment = start
    while moment <= until:
        row = found.get(moment)
        buckets.append(Bucket(moment, row["calls"] if row else 0, row["errors"] if row else 0))
        moment += step
    return buckets


def _truncate(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment if unit == "minute" else moment.replace(minute=0)


@dataclass
class Unknown:
    """Calls to names that are no registered tool, resource or prompt (clients invent some)."""

    names: set[str] = field(default_factory=set)
    stats: ToolStats = field(default_factory=ToolStats)


def split_unknown(per_tool: dict[Key, ToolStats]) -> tuple[dict[Key, ToolStats], Unknown]:
    """``per_tool`` without the tool and prompt names no ``Tool`` row (current or stale) has,
    and those summed. Resource reads keep their URIs: a template's reads name concrete URIs."""
    known = {(METHOD_OF_KIND.get(kind, "tools/call"), name) for kind, name in Tool.objects.values_list("kind", "name")}
    kept: dict[Key, ToolStats] = {}
    unknown = Unknown()
    total_ms = 0.0
    for key, found in per_tool.items():
        if key in known or key[0] not in NAMED_METHODS:
            kept[key] = found
            continue
        unknown.names.add(key[1])
        merged = unknown.stats
        merged.calls += found.calls
        merged.errors += found.errors
        total_ms += (found.mean_ms or 0.0) * found.calls
        if found.max_ms is not None:
            merged.max_ms = max(merged.max_ms or 0.0, found.max_ms)
    if unknown.stats.calls:
        unknown.stats.mean_ms = total_ms / unknown.stats.calls
    return kept, unknown

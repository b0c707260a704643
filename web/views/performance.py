"""The performance page (`/performance/`) and its CSV downloads: how the signals turned out, with
the uncertainty drawn. Signed-in users; each sees the scanners' numbers and, with a watchlist, only
their own watchlists (another user's is refused with the same 400 as an unknown one, as the API
does, so nobody learns which other users' watchlists exist).

The query is the API's (`tracking.performance_api.PerformanceQuerySerializer`: the same parameters,
validation and defaults — 30 days, horizon 24h) and the numbers are the API's services
(`tracking.analytics.performance_report`, `performance_summary`); this module only lays them out.
Month by month is `performance_summary` of each calendar month (UTC) of the window, so a month's
numbers are exactly what /api/performance/stats?since=…&until=… answers for it.

Every chart's numbers are a table on the page and the same table as CSV (`performance_csv`): both
are built from one `Table`, so they cannot differ.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Min
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from scanners.watchlists import watchlists_of
from scoring.services import TIERS
from tracking import analytics, windows
from tracking.metrics import TOO_FEW
from tracking.models import Direction, Horizon, Signal
from tracking.performance_api import SCANNER_CHOICES, PerformanceQuerySerializer
from tracking.performance_cache import cached_performance
from tracking.performance_filters import PerformanceFilters

TOP_LIMIT = 10  # best and worst signals shown, as the API's report
MAX_MONTHS = 36  # month by month reads one summary per month: the latest 36 of a longer window
# The database's resolution: a month ends 1 µs before the next one starts.
MICROSECOND = timedelta(microseconds=1)

GROUP_CHARTS = (
    ("scanner", "by_scanner", "Scanner"),
    ("tier", "by_tier", "Tier"),
    ("direction", "by_signal_type", "Direction"),
    ("horizon", "by_interval", "Horizon"),
)


@dataclass(frozen=True)
class Table:
    """A chart's numbers as the page shows them and the CSV gives them: text cells."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # The first cell is a signal's id: the page links it to the signal page (the CSV keeps the id).
    first_is_signal: bool = False


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _group_name(dimension: str, group: str | None) -> str:
    if group is None:
        return "no tier" if dimension == "tier" else "none"
    return group


GROUP_COLUMNS = (
    "n",
    "wins",
    "losses",
    "neutral",
    "win rate %",
    "95 % low",
    "95 % high",
    "expectancy %",
    "excess over BTC %",
    "excess n",
    "judgement",
)


def _metric_cells(row: dict[str, Any]) -> tuple[str, ...]:
    ci = row["win_rate_ci"]
    return (
        _int(row["n"]),
        _int(row["wins"]),
        _int(row["losses"]),
        _int(row["neutral"]),
        _num(row["win_rate"]),
        _num(ci["low"]),
        _num(ci["high"]),
        _num(row["expectancy_pct"]),
        _num(row["avg_excess_return_pct"]),
        _int(row["excess_n"]),
        row["judgement"],
    )


def group_table(dimension: str, title: str, groups: list[dict[str, Any]]) -> Table:
    return Table(
        name=dimension,
        title=f"Win rate by {title.lower()}",
        columns=(title, *GROUP_COLUMNS),
        rows=tuple((_group_name(dimension, row["group"]), *_metric_cells(row)) for row in groups),
    )


def group_chart(dimension: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page's script draws: a bar per group with its Wilson interval; a group with too
    few outcomes gets no bar (value null) and says so in its label, never a 0 % bar."""
    points = []
    for row in groups:
        too_few = row["judgement"] == TOO_FEW or row["win_rate"] is None
        points.append(
            {
                "label": _group_name(dimension, row["group"]),
                "n": row["n"],
                "too_few": too_few,
                "value": None if too_few else row["win_rate"],
                "low": None if too_few else row["win_rate_ci"]["low"],
                "high": None if too_few else row["win_rate_ci"]["high"],
            }
        )
    return {"dimension": dimension, "points": points, "too_few_text": TOO_FEW}


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def monthly(filters: PerformanceFilters) -> list[dict[str, Any]]:
    """The summary (`analytics.performance_summary`) of each calendar month (UTC) the window
    touches, each cut to the window, oldest first; at most the latest MAX_MONTHS. A window
    without a lower bound starts at the first signal the filters select."""
    filters = filters.resolved()
    window = filters.as_of_range()
    start = window.start
    if start is None:
        start = Signal.objects.filter(filters.signal_q()).aggregate(first=Min("as_of"))["first"]
        if start is None:
            return []
    elif not window.start_included:
        start += MICROSECOND
    end = window.end
    if start > end:
        return []
    months = [_month_start(start)]
    while _next_month(months[-1]) <= end:
        months.append(_next_month(months[-1]))
    rows = []
    for month in months[-MAX_MONTHS:]:
        since = max(month, start)
        until = min(_next_month(month) - MICROSECOND, end)
        summary = analytics.performance_summary(
            replace(filters, days=None, since=since, until=until)
        )
        rows.append({"month": month.strftime("%Y-%m"), **summary})
    return rows


def monthly_table(months: list[dict[str, Any]]) -> Table:
    return Table(
        name="monthly",
        title="Win rate and expectancy month by month",
        columns=("month", "n", "win rate %", "95 % low", "95 % high", "expectancy %", "judgement"),
        rows=tuple(
            (
                row["month"],
                _int(row["n"]),
                _num(row["win_rate"]),
                _num(row["win_rate_ci"]["low"]),
                _num(row["win_rate_ci"]["high"]),
                _num(row["expectancy_pct"]),
                row["judgement"],
            )
            for row in months
        ),
    )


def excess_table(months: list[dict[str, Any]]) -> Table:
    return Table(
        name="excess",
        title="Excess return over BTC month by month",
        columns=("month", "excess over BTC %", "excess n"),
        rows=tuple(
            (row["month"], _num(row["avg_excess_return_pct"]), _int(row["excess_n"]))
            for row in months
        ),
    )


def monthly_chart(months: list[dict[str, Any]]) -> dict[str, Any]:
    """Win rate (null where too few), expectancy and excess over BTC per month."""
    return {
        "labels": [row["month"] for row in months],
        "win_rate": [None if row["judgement"] == TOO_FEW else row["win_rate"] for row in months],
        "n": [row["n"] for row in months],
        "expectancy": [row["expectancy_pct"] for row in months],
        "excess": [row["avg_excess_return_pct"] for row in months],
        "too_few_text": TOO_FEW,
    }


SIGNAL_COLUMNS = (
    "signal",
    "as of (UTC)",
    "scanner",
    "symbol",
    "direction",
    "tier",
    "return %",
    "adjusted return %",
    "excess over BTC %",
    "outcome",
)


def signals_table(name: str, title: str, signals: list[dict[str, Any]]) -> Table:
    return Table(
        name=name,
        title=title,
        columns=SIGNAL_COLUMNS,
        first_is_signal=True,
        rows=tuple(
            (
                str(row["signal_id"]),
                row["as_of"].astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                row["scanner"],
                row["symbol"],
                row["direction"],
                row["tier"] or "",
                _num(row["return_pct"]),
                _num(row["adjusted_return_pct"]),
                _num(row["excess_return_pct"]),
                row["outcome"],
            )
            for row in signals
        ),
    )


def recommendations_table(advice: dict[str, Any]) -> Table:
    return Table(
        name="recommendations",
        title="Recommendations and their evidence",
        columns=(
            "priority",
            "topic",
            "advice",
            "evidence",
            "win rate %",
            "95 % low",
            "95 % high",
            "n",
        ),
        rows=tuple(
            (
                row["priority"],
                row["topic"],
                row["message"],
                row["evidence"]["group"],
                _num(row["evidence"]["win_rate"]),
                _num(row["evidence"]["low"]),
                _num(row["evidence"]["high"]),
                _int(row["evidence"]["n"]),
            )
            for row in advice["recommendations"]
        ),
    )


@cached_performance
def performance_data(filters: PerformanceFilters) -> dict[str, Any]:
    """The page's numbers: the API's report, month by month, every table and chart; kept in the
    read cache as the API's answers are (tracking/performance_cache.py), since a window ending
    now moves each month's bounds with every request and no per-month answer would be reused."""
    filters = filters.resolved()
    report = analytics.performance_report(filters, limit=TOP_LIMIT)
    months = monthly(filters)
    top = report["top_performers"]
    tables = {
        dimension: group_table(dimension, title, report[key])
        for dimension, key, title in GROUP_CHARTS
    }
    tables["monthly"] = monthly_table(months)
    tables["excess"] = excess_table(months)
    tables["best"] = signals_table("best", "Best signals", top["best_signals"])
    tables["worst"] = signals_table("worst", "Worst signals", top["worst_signals"])
    tables["recommendations"] = recommendations_table(report["recommendations"])
    charts = {dimension: group_chart(dimension, report[key]) for dimension, key, _ in GROUP_CHARTS}
    charts["monthly"] = monthly_chart(months)
    return {"report": report, "months": months, "tables": tables, "charts": charts}


# --- the views ----------------------------------------------------------------------------------


def _query(request: HttpRequest) -> dict[str, str]:
    """The form's parameters without the empty ones (a blank select means "all")."""
    return {key: value for key, value in request.GET.items() if value.strip()}


def _errors(errors: dict[str, Any]) -> list[str]:
    messages = []
    for field, problems in errors.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            messages.append(str(problem) if field == "non_field_errors" else f"{field}: {problem}")
    return messages


def _parse(request: HttpRequest) -> PerformanceQuerySerializer:
    query = PerformanceQuerySerializer(data=_query(request), context={"request": request})
    query.is_valid()
    return query


def datetime_local(raw: str | None) -> str:
    """A `since`/`until` as a datetime-local input shows it (UTC, to the minute or second), so a
    window given in a link as a date (2024-03-01) or with an offset survives the next Apply; ""
    when it is not a date or time (the errors above the form say so)."""
    if not raw or not raw.strip():
        return ""
    try:
        moment = windows.moment_parse(raw, "value")
    except windows.WindowError:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def _choices(request: HttpRequest) -> dict[str, Any]:
    return {
        "since_input": datetime_local(request.GET.get("since")),
        "until_input": datetime_local(request.GET.get("until")),
        "scanners": SCANNER_CHOICES,
        "tiers": list(TIERS),
        "directions": Direction.values,
        "horizons": Horizon.values,
        "watchlists": watchlists_of(request.user).order_by("name"),
        "q": request.GET,
        "default_days": PerformanceQuerySerializer.default_days,
    }


@login_required
def performance_page(request: HttpRequest) -> HttpResponse:
    """Signed-in users. Filters as GET /api/performance/report takes them (a bad one: the page
    with the errors, status 400); the watchlist must be one of the user's."""
    query = _parse(request)
    context = _choices(request)
    if query.errors:
        context["errors"] = _errors(query.errors)
        return render(request, "web/performance.html", context, status=400)
    data = performance_data(query.filters())
    context.update(data)
    context["summary"] = data["report"]["summary"]
    context["group_charts"] = [
        (dimension, title, data["tables"][dimension]) for dimension, _, title in GROUP_CHARTS
    ]
    context["query_string"] = request.GET.urlencode()
    return render(request, "web/performance.html", context)


CSV_TABLES = (
    "scanner",
    "tier",
    "direction",
    "horizon",
    "monthly",
    "excess",
    "best",
    "worst",
    "recommendations",
)


@login_required
def performance_csv(request: HttpRequest, table: str) -> HttpResponse:
    """Signed-in users: one of the page's tables as CSV, for the same filters (a bad one: 400
    with the errors as text); an unknown table is a 404."""
    if table not in CSV_TABLES:
        raise Http404(f"no table {table!r}; expected one of {', '.join(CSV_TABLES)}")
    query = _parse(request)
    if query.errors:
        return HttpResponse(
            "\n".join(_errors(query.errors)) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    found = performance_data(query.filters())["tables"][table]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="performance-{table}.csv"'
    writer = csv.writer(response)
    writer.writerow(found.columns)
    writer.writerows(found.rows)
    return response

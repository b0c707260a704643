"""The overview (`/`): what a trader opens every morning. Signed-in users.

- The unified ranking, filtered by tier, direction and one of the user's own watchlists (another
  user's is refused like one that does not exist), read as the API reads it: its filter
  (`scoring.api.RankingFilter`) and its cached page (`scoring.api.ranking_page`). The page polls
  `/partials/ranking` (htmx) with the id of the newest finished scan it shows: 204 while that is
  still the newest, else the new table; so a finished scan shows without a reload.
- The scanners' win rate over the last 30 days (at the headline horizon) with its Wilson
  intervals: `tracking.analytics.performance_by("scanner", ...)`, the performance page's numbers,
  drawn by the same script; its table is the performance page's (and its CSV).
- The latest signals the user may see (`tracking.services.signals_visible_to`), each a link to its
  page.
- The market time: the replay clock (and how far it has come) in a replay, else live.
- Health: every user sees what /api/health shows anyone (the status, the parts that are down, the
  history fill); staff also see each part's details, as /api/health gives staff.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from core import health_hook
from market.replay_clock import get_clock, market_now
from scanners.models import RunStatus, ScanRun, Watchlist
from scoring.api import RankingFilter, ranking_page
from scoring.models import UnifiedRanking
from scoring.services import DIRECTIONS, TIERS
from tracking import analytics
from tracking.performance_filters import PerformanceFilters
from tracking.services import signals_visible_to
from web.views.performance import group_chart, group_table

# The ranking shows its best rows; the whole of it is the API's (paginated).
RANKING_ROWS = 50
LATEST_SIGNALS = 10
# How often an open overview asks whether a scan has finished since (a cheap indexed read).
POLL_SECONDS = 10


class RankingFilterForm(forms.Form):
    """The ranking's filters as the page offers them: the watchlist is one of the user's own."""

    tier = forms.ChoiceField(choices=[("", "Any tier"), *((t, t) for t in TIERS)], required=False)
    direction = forms.ChoiceField(
        choices=[("", "Both"), *((d, d) for d in DIRECTIONS)], required=False
    )
    watchlist = forms.ModelChoiceField(
        queryset=Watchlist.objects.none(), required=False, empty_label="All coins"
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["watchlist"].queryset = Watchlist.objects.filter(owner_id=user.pk).order_by(
            "name"
        )


def newest_finished_scan() -> int | None:
    """The id of the scan that finished last (its final step has written its ranking rows)."""
    return (
        ScanRun.objects.filter(status=RunStatus.FINISHED)
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .values_list("pk", flat=True)
        .first()
    )


def ranking_context(request: HttpRequest, form: RankingFilterForm) -> dict[str, Any]:
    """The ranking's rows for a valid `form`, through the API's filter, and what the poll
    needs to ask for the same ranking again."""
    params = form.cleaned_data
    watchlist = params.get("watchlist")
    query = {
        "tier": params.get("tier") or "",
        "direction": params.get("direction") or "",
        "watchlist": str(watchlist.pk) if watchlist else "",
    }
    chosen = {key: value for key, value in query.items() if value}
    ranking_filter = RankingFilter(
        data=chosen, queryset=UnifiedRanking.objects.none(), request=request
    )
    # The form has checked every value and that the watchlist is the user's: the filter's own
    # validation cannot fail here.
    ranking_filter.is_valid()
    scan = newest_finished_scan()
    total, rows = ranking_page(ranking_filter.selection(), offset=0, limit=RANKING_ROWS)
    # The API's rows carry their time as ISO text; the template formats datetimes.
    rows = [{**row, "as_of": parse_datetime(row["as_of"])} for row in rows]
    poll = {**chosen, "shown": "" if scan is None else str(scan)}
    return {
        "ranking": rows,
        "ranking_total": total,
        "ranking_rows": RANKING_ROWS,
        "shown_scan": scan,
        "poll_url": f"{reverse('web:ranking_partial')}?{urlencode(poll)}",
        "filtered": bool(chosen),
        "poll_seconds": POLL_SECONDS,
        "watchlist": watchlist,
    }


def market_status() -> dict[str, Any]:
    """The market time the product stands at: in a replay, the clock, its range and how far it
    has come (percent of its range); live, the wall clock."""
    if settings.MARKET_SOURCE != "replay":
        return {"mode": "live", "market_time": market_now(), "source": settings.MARKET_SOURCE}
    clock = get_clock()
    if clock is None:
        return {"mode": "replay", "clock": None}
    span = (clock.end - clock.start).total_seconds()
    done = (clock.market_time - clock.start).total_seconds()
    return {
        "mode": "replay",
        "clock": clock,
        "market_time": clock.market_time,
        "progress": round(100 * done / span, 1) if span > 0 else 100.0,
    }


def scanner_performance(user: Any) -> dict[str, Any]:
    """The scanners' win rate over the default window (the API's: 30 days to the market time, at
    the headline horizon), as a chart's data and its table; the user's own manual signals only
    (as the API gives a user)."""
    by_scanner = analytics.performance_by("scanner", PerformanceFilters(owner_id=user.pk))
    return {
        "by_scanner": by_scanner,
        "by_scanner_chart": group_chart("scanner", by_scanner["groups"]),
        "by_scanner_table": group_table("scanner", "Scanner", by_scanner["groups"]),
    }


@login_required
def overview_page(request: HttpRequest) -> HttpResponse:
    """The overview. Signed-in users; the watchlist filter takes only the user's own watchlists
    (any other is a 400 with the form's message, the same for one that does not exist)."""
    report = health_hook.report_kept()
    parts = (
        {name: check for name, check in report.items() if isinstance(check, dict)}
        if request.user.is_staff
        else {}
    )
    form = RankingFilterForm(request.GET or None, user=request.user)
    context: dict[str, Any] = {
        "health": health_hook.public(report),
        "health_parts": parts,
        "form": form,
        "signals": list(
            signals_visible_to(request.user).order_by("-as_of", "-id")[:LATEST_SIGNALS]
        ),
        "market": market_status(),
        **scanner_performance(request.user),
    }
    status = 200
    if not form.is_bound:
        form = RankingFilterForm({}, user=request.user)
        form.is_valid()
        context["form"] = form
    if form.is_valid():
        context.update(ranking_context(request, form))
    else:
        status = 400
    return render(request, "web/overview.html", context, status=status)


@login_required
def ranking_partial(request: HttpRequest) -> HttpResponse:
    """The overview's ranking table (htmx poll). Signed-in users, same filters as the page plus
    `shown`: the newest finished scan the page shows. 204 while that is still the newest finished
    scan (nothing to swap), else the table as of now; 400 for invalid filters or `shown`."""
    form = RankingFilterForm(request.GET, user=request.user)
    shown = request.GET.get("shown", "")
    if not form.is_valid() or (shown and not shown.isdigit()):
        return HttpResponse("invalid ranking filters", status=400, content_type="text/plain")
    newest = newest_finished_scan()
    if (str(newest) if newest is not None else "") == shown:
        return HttpResponse(status=204)
    return render(request, "web/partials/ranking.html", ranking_context(request, form))

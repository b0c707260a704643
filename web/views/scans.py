"""Scans (`/scans/`, `/scans/<id>/`): the scan runs with their scanner, status, duration, coins
and failures, and one run's failed coins with their errors and its results per scanner.

Who may: signed-in users, the runs /api/scans/ shows them (`scanners.api.visible_runs`): the
shared runs (the schedule's, a command's, staff's) and their own (runs they started, runs of their
watchlists); holders of scanners.view_scanrun (staff) every run. Another user's run of their
watchlist or of coins they named is a 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from scanners.api import (
    ScanResultFilter,
    ScanRunDetailSerializer,
    ScanRunFilter,
    ScanRunSerializer,
    visible_runs,
)
from scanners.models import ScanResult, ScanRun
from web.views.listing import BadQuery, any_choice, filtered, page_of

RESULTS_PAGE_SIZE = 50


@login_required
@require_safe
def scans_page(request: HttpRequest) -> HttpResponse:
    """Runs newest first, filtered by scanner, status and trigger (the API's ScanRunFilter),
    25 a page. A bad filter or page: the page says which, with status 400."""
    runs = visible_runs(request).select_related("watchlist").order_by("-created_at", "-id")
    filterset = ScanRunFilter(request.GET, queryset=runs, request=request)
    any_choice(filterset.form)
    context: dict[str, object] = {"filterset": filterset, "errors": [], "rows": []}
    try:
        page = page_of(request.GET, filtered(filterset))
    except BadQuery as bad:
        context["errors"] = bad.messages
        return render(request, "web/scans.html", context, status=400)
    # The API's representation of each run: its duration and (only when it is yours) watchlist.
    shown = ScanRunSerializer(page.object_list, many=True, context={"request": request}).data
    context |= {"page": page, "rows": list(zip(page.object_list, shown, strict=True))}
    return render(request, "web/scans.html", context)


def results_by_scanner(run: ScanRun) -> list[dict[str, object]]:
    """Per scanner of the run: its results, how many fired LONG and SHORT, and how many had all
    their inputs (completeness 1)."""
    return list(
        ScanResult.objects.filter(run=run)
        .values("scanner")
        .annotate(
            results=Count("id"),
            long=Count("id", filter=Q(direction="LONG")),
            short=Count("id", filter=Q(direction="SHORT")),
            complete=Count("id", filter=Q(completeness__gte=1)),
        )
        .order_by("scanner")
    )


@login_required
@require_safe
def scan_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One run (the same data as /api/scans/<id>/): its coins, the coins that failed with their
    errors, and its results per scanner and per coin (filters of /api/scans/<id>/results:
    scanner, symbol, direction; 50 a page). A run the user may not see: 404."""
    run = get_object_or_404(
        visible_runs(request).select_related("watchlist").prefetch_related("failures"), pk=pk
    )
    detail = ScanRunDetailSerializer(run, context={"request": request}).data
    results = ScanResult.objects.filter(run=run).order_by("symbol", "scanner")
    filterset = ScanResultFilter(request.GET, queryset=results, request=request)
    any_choice(filterset.form)
    context: dict[str, object] = {
        "run": run,
        "detail": detail,
        "failures": sorted(detail["failures"], key=lambda failure: failure["symbol"]),
        "by_scanner": results_by_scanner(run),
        "filterset": filterset,
        "errors": [],
    }
    try:
        context["page"] = page_of(request.GET, filtered(filterset), RESULTS_PAGE_SIZE)
    except BadQuery as bad:
        context["errors"] = bad.messages
        return render(request, "web/scan.html", context, status=400)
    return render(request, "web/scan.html", context)

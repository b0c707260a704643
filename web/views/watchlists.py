"""Watchlists (`/watchlists/`, `/watchlists/<id>/`): the user's own lists of coins: create one,
rename it and edit its coins, delete it, scan it now, and see its latest results, its scans, its
alerts and how its signals did.

Who may: signed-in users, and only their own watchlists (`scanners.watchlists.watchlists_of`):
another user's watchlist is a 404 for everyone else, staff included, as in /api/watchlists/.
Every change is a POST with Django's CSRF token. Each form works without JavaScript (POST, then a
redirect to the page); with htmx the page swaps only the card that changed (`hx-select`), so an
htmx request gets its errors with status 200 (htmx swaps nothing on a 4xx) and a plain POST gets
400 (or 409 for a refused scan, 429 past the scan rate).

Validation is the API's: the same serializers (scanners/watchlist_api.py) and services
(scanners/watchlists.py, scanners.scanning.scan_start), so the same input gets the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from rest_framework import serializers

from alerts.services import watchlist_alerts
from core.throttling import ScanStartThrottle
from market.replay_clock import market_now
from scanners.api import WatchlistScanRequestSerializer, visible_runs
from scanners.models import ScannerName, Watchlist
from scanners.scanning import ScanRefused, UnknownSymbols, scan_start
from scanners.watchlist_api import (
    WatchlistCreateSerializer,
    WatchlistRenameSerializer,
    WatchlistReplaceCoinsSerializer,
)
from scanners.watchlists import (
    WatchlistError,
    watchlist_create,
    watchlist_delete,
    watchlist_latest_results,
    watchlist_rename,
    watchlist_replace_coins,
    watchlists_of,
)
from tracking import analytics
from tracking.performance_api import PerformanceQuerySerializer

RECENT = 10  # runs and alerts shown on a watchlist's page; the full lists are linked
COINS_HELP = "Separated by commas, spaces or new lines: BTC, ETHUSDT, SOL/USDT."


def coin_list(text: str) -> list[str]:
    """The coins typed into a form, in order: split on commas and white space."""
    return [coin for coin in re.split(r"[\s,;]+", text or "") if coin]


class WatchlistForm(forms.Form):
    """Name and coins as typed; their rules are the API serializers' (see `_checked`)."""

    name = forms.CharField(max_length=100, strip=True)
    coins = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=COINS_HELP
    )


class ScanNowForm(forms.Form):
    """The scanner to run; none given: all four, the API's default."""

    scanner = forms.ChoiceField(
        choices=ScannerName.choices, initial=ScannerName.ALL, required=False
    )


def _checked(
    form: forms.Form, serializer_class: type[serializers.Serializer], fields: list[str]
) -> dict:
    """Run one of the API's serializers over the form's `fields` (coins as a list); its errors
    become the form's. Returns its validated data, or {} when there were errors."""
    values = {f: form.cleaned_data[f] for f in fields}
    if "coins" in values:
        values["coins"] = coin_list(values["coins"])
    serializer = serializer_class(data=values)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    for name, errors in serializer.errors.items():
        for error in _flat(errors):
            form.add_error(name if name in form.fields else None, error)
    return {}


def _flat(errors: object) -> list[str]:
    """A serializer field's errors as lines; a list's per-item errors name the item (1-based)."""
    if isinstance(errors, dict):
        return [f"item {int(i) + 1}: {e}" for i, item in errors.items() for e in _flat(item)]
    if isinstance(errors, list):
        return [line for error in errors for line in _flat(error)]
    return [str(errors)]


@contextmanager
def refusals_into(form: forms.Form) -> Iterator[None]:
    """The watchlist services' refusals become the form's errors (unknown coins: `coins`; a
    taken or empty name: `name`), as the API's `watchlist_errors` makes them 400s."""
    try:
        yield
    except UnknownSymbols as error:
        form.add_error("coins", str(error))
    except WatchlistError as error:
        for message in error.messages:
            form.add_error("name", message)


def _error_status(request: HttpRequest, code: int) -> int:
    return 200 if request.htmx else code


# --- the list ---------------------------------------------------------------------------------


def _own(request: HttpRequest) -> QuerySet[Watchlist]:
    return watchlists_of(request.user).prefetch_related("coins").order_by("name", "id")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def watchlists_page(request: HttpRequest) -> HttpResponse:
    """GET: the user's watchlists. POST: create one (name and coins, the API's rules: a name
    of theirs only once, each coin a spot market of the exchange, every unknown one listed);
    then to its page. Bad input: the form again with the errors, status 400."""
    form = WatchlistForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            data = _checked(form, WatchlistCreateSerializer, ["name", "coins"])
            if not form.errors:
                with refusals_into(form):
                    created = watchlist_create(
                        owner=request.user, name=data["name"], symbols=data["coins"]
                    )
                    messages.success(request, f"Watchlist {created.name!r} created.")
                    return redirect("web:watchlist", created.pk)
        status = 400
    else:
        status = 200
    return render(
        request, "web/watchlists.html", {"form": form, "watchlists": _own(request)}, status=status
    )


# --- one watchlist ----------------------------------------------------------------------------


def _performance(request: HttpRequest, watchlist: Watchlist) -> dict[str, Any]:
    """The headline performance of the watchlist's signals, as /api/performance/stats?watchlist=
    answers it (its default window and horizon)."""
    query = PerformanceQuerySerializer(
        data={"watchlist": str(watchlist.pk)}, context={"request": request}
    )
    query.is_valid(raise_exception=True)
    return analytics.performance_summary(query.filters())


def _watchlist_page(
    request: HttpRequest,
    watchlist: Watchlist,
    *,
    edit_form: WatchlistForm | None = None,
    scan_form: ScanNowForm | None = None,
    scan_error: str = "",
    status: int = 200,
) -> HttpResponse:
    coins = sorted(watchlist.coins.values_list("symbol", flat=True))
    alerts = list(watchlist_alerts(watchlist)[:RECENT])
    for alert in alerts:
        alert.signal_url = reverse("web:signal", args=[alert.signal_id])
    performance_url = reverse("web:performance")
    context = {
        "watchlist": watchlist,
        "coins": coins,
        "edit_form": edit_form
        or WatchlistForm(initial={"name": watchlist.name, "coins": ", ".join(coins)}),
        "scan_form": scan_form or ScanNowForm(),
        "scan_error": scan_error,
        "runs": visible_runs(request)
        .filter(watchlist=watchlist)
        .order_by("-created_at", "-id")[:RECENT],
        "results": watchlist_latest_results(watchlist=watchlist, now=market_now()),
        "alerts": alerts,
        "alerts_url": reverse("web:alerts"),
        "performance": _performance(request, watchlist),
        "performance_url": f"{performance_url}?watchlist={watchlist.pk}"
        if performance_url
        else None,
    }
    return render(request, "web/watchlist.html", context, status=status)


@login_required
@require_safe
def watchlist_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the user's watchlists (owner only; anyone else: 404): its coins (editable), scan
    now, its scans, each scanner's latest result per coin, its alerts, its performance."""
    return _watchlist_page(request, get_object_or_404(watchlists_of(request.user), pk=pk))


@login_required
@require_POST
def watchlist_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Owner only (404 otherwise): rename the watchlist and make it hold exactly the coins given
    (an empty list empties it), both or neither: an unknown coin or a taken name changes
    nothing and the form says why (400; 200 to htmx)."""
    watchlist = get_object_or_404(watchlists_of(request.user), pk=pk)
    form = WatchlistForm(request.POST)
    if form.is_valid():
        data = _checked(form, WatchlistRenameSerializer, ["name"])
        data |= _checked(form, WatchlistReplaceCoinsSerializer, ["coins"])
        if not form.errors:
            with refusals_into(form), transaction.atomic():  # both changes or neither
                watchlist_rename(watchlist=watchlist, name=data["name"])
                watchlist_replace_coins(watchlist=watchlist, symbols=data["coins"])
                messages.success(request, f"Watchlist {watchlist.name!r} saved.")
                return redirect("web:watchlist", watchlist.pk)
    watchlist.refresh_from_db()  # a refused rename leaves the name as it was
    return _watchlist_page(request, watchlist, edit_form=form, status=_error_status(request, 400))


@login_required
@require_POST
def watchlist_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Owner only (404 otherwise): delete the watchlist; back to the list."""
    watchlist = get_object_or_404(watchlists_of(request.user), pk=pk)
    name = watchlist.name
    watchlist_delete(watchlist=watchlist)
    messages.success(request, f"Watchlist {name!r} deleted.")
    return redirect("web:watchlists")


@login_required
@require_POST
def watchlist_scan(request: HttpRequest, pk: int) -> HttpResponse:
    """Owner only (404 otherwise): start a scan of the watchlist's coins now, as
    POST /api/watchlists/<id>/scan does (`scan_start`, the same per-user rate). The page then
    shows the run it started; a refused scan (one of that scanner still running, no coins) says
    why (409; 200 to htmx), and past the rate it says when to try again (429; 200 to htmx)."""
    watchlist = get_object_or_404(watchlists_of(request.user), pk=pk)
    form = ScanNowForm(request.POST)
    if not form.is_valid():
        return _watchlist_page(
            request, watchlist, scan_form=form, status=_error_status(request, 400)
        )
    chosen = form.cleaned_data["scanner"]
    params = WatchlistScanRequestSerializer(data={"scanner": chosen} if chosen else {})
    params.is_valid(raise_exception=True)  # the form allowed only the serializer's choices
    throttle = ScanStartThrottle()
    if not throttle.allow_request(request, None):
        wait = throttle.wait()
        message = "Too many scans started: try again" + (
            f" in {int(wait) + 1} s." if wait is not None else " later."
        )
        return _watchlist_page(
            request, watchlist, scan_error=message, status=_error_status(request, 429)
        )
    try:
        run = scan_start(
            params.validated_data["scanner"],
            requested_by_id=request.user.pk,
            watchlist_id=watchlist.pk,
            as_of=params.validated_data.get("as_of"),
        )
    except (ScanRefused, UnknownSymbols) as refused:
        return _watchlist_page(
            request, watchlist, scan_error=str(refused), status=_error_status(request, 409)
        )
    messages.success(request, f"Scan #{run.pk} ({run.scanner}, {run.coins_total} coins) started.")
    return redirect("web:watchlist", watchlist.pk)

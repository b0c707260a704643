"""The signals list (`/signals/`): every signal the user may see, newest first, filtered and paged,
each with its outcome so far at the five horizons. Signed-in users: they see every scanner's and
the ranking's signals and their own manual ones (staff: everyone's), as GET /api/signals/ does
(`tracking.services.signals_visible_to`), filtered by the API's own FilterSet
(`tracking.api.SignalFilter`: scanner, tier, direction, symbol, since, until) plus `watchlist`,
one of the user's own watchlists by id or name (another user's is refused like an unknown one, 400,
as every API endpoint taking a watchlist does).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError

from scanners.watchlist_params import WatchlistParamFilter
from scanners.watchlists import watchlists_of
from scoring.services import TIERS
from tracking.api import SignalFilter
from tracking.models import HORIZON_DELTAS, CheckStatus, Direction, OutcomeCheck, SignalScanner
from tracking.services import signals_visible_to
from web.views.performance import datetime_local

PAGE_SIZE = 50
HORIZONS = tuple(HORIZON_DELTAS)
# The list pages through the newest COUNT_CAP signals of a selection: counting every signal
# grows with the history (~45 ms at 200k on PostgreSQL), counting up to a cap does not.
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A Paginator over at most the first COUNT_CAP rows of its queryset; `capped` says whether
    the selection holds more (the filters narrow it)."""

    @cached_property
    def found(self) -> int:
        """The rows, counted up to COUNT_CAP + 1 (one more tells that there are more)."""
        return self.object_list[: COUNT_CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.found, COUNT_CAP)

    @property
    def capped(self) -> bool:
        return self.found > COUNT_CAP


class SignalPageFilter(SignalFilter):
    """The API's signal filters, and the coins of one of the user's watchlists."""

    watchlist = WatchlistParamFilter(field_name="symbol")

    class Meta(SignalFilter.Meta):
        fields = [*SignalFilter.Meta.fields, "watchlist"]


def outcome_badges(checks: list[OutcomeCheck]) -> list[dict[str, str]]:
    """One badge per horizon (1h … 30d): its state — win, loss or neutral once checked, pending
    while open, unavailable when no price was found, none when the signal has no such check —
    and a title with the return."""
    by_horizon = {check.horizon: check for check in checks}
    badges = []
    for horizon in HORIZONS:
        check = by_horizon.get(horizon)
        if check is None:
            state, detail = "none", "no check"
        elif check.status == CheckStatus.DONE:
            state = (check.outcome or "neutral").lower()
            detail = (
                f"{check.outcome or 'checked'}, {check.adjusted_return_pct:+.2f} % in its favour"
                if check.adjusted_return_pct is not None
                else check.outcome or "checked"
            )
        elif check.status == CheckStatus.UNAVAILABLE:
            state, detail = "unavailable", check.unavailable_reason or "no price at the due time"
        else:
            state, detail = "pending", f"due {check.due_at:%Y-%m-%d %H:%M} UTC"
        badges.append({"horizon": horizon, "state": state, "title": f"{horizon}: {detail}"})
    return badges


def _errors(errors: dict[str, Any]) -> list[str]:
    messages = []
    for field, problems in errors.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            messages.append(f"{field}: {problem}" if field != "__all__" else str(problem))
    return messages


@login_required
def signals_page(request: HttpRequest) -> HttpResponse:
    """Signed-in users: the signals they may see. Bad filters (or another user's watchlist): the
    page with the errors, status 400; `page` must be a page number that exists (else 400 / 404)."""
    context: dict[str, Any] = {
        "scanners": SignalScanner.values,
        "tiers": list(TIERS),
        "directions": Direction.values,
        "horizons": HORIZONS,
        "watchlists": watchlists_of(request.user).order_by("name"),
        "q": request.GET,
        "since_input": datetime_local(request.GET.get("since")),
        "until_input": datetime_local(request.GET.get("until")),
    }
    queryset = signals_visible_to(request.user).prefetch_related(
        Prefetch("outcome_checks", queryset=OutcomeCheck.objects.order_by("due_at"))
    )
    filterset = SignalPageFilter(request.GET, queryset=queryset, request=request)
    errors: list[str] = []
    if not filterset.is_valid():
        errors = _errors(filterset.errors)
    else:
        try:
            filtered = filterset.qs
        except ValidationError as error:  # the watchlist is not one of the user's
            errors = _errors(error.detail)
    page_text = request.GET.get("page", "1").strip() or "1"
    if not errors and not page_text.isdigit():
        errors = [f"page: {page_text!r} is not a page number (1, 2, …)"]
    if errors:
        context["errors"] = errors
        return render(request, "web/signals.html", context, status=400)
    paginator = CappedPaginator(filtered, PAGE_SIZE)
    try:
        page = paginator.page(int(page_text))
    except EmptyPage:
        raise Http404(f"there is no page {page_text} of these signals") from None
    context["page"] = page
    context["rows"] = [
        {
            "signal": signal,
            "href": reverse("web:signal", args=[signal.pk]),
            "badges": outcome_badges(list(signal.outcome_checks.all())),
        }
        for signal in page.object_list
    ]
    return render(request, "web/signals.html", context)

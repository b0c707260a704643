"""Alerts (`/alerts/`): the alert outbox's history with each alert's state (sent, pending,
retrying, unconfirmed, failed, folded into a digest, suppressed), filterable by state, tier, kind
and watchlist; and, for staff, "resend" on a failed or unconfirmed alert.

Who may: the history, every signed-in user, as /api/alerts/ (alerts have no owner: they go to the
one configured chat; the `watchlist` filter keeps the alerts on the coins of one of the user's
own watchlists). Resend: holders of alerts.resend_alert (staff, or granted by an admin), as
POST /api/alerts/<id>/resend and the admin's action, through the same service (`alert_resend`);
anyone else's POST is a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from alerts.api import AlertFilter
from alerts.models import RESENDABLE_STATES
from alerts.services import alert_history, alert_resend
from core.permissions import RESEND_ALERT
from scanners.watchlists import watchlists_of
from web.views.listing import BadQuery, any_choice, filtered, page_of


def _alerts_page(request: HttpRequest, *, problem: str = "", status: int = 200) -> HttpResponse:
    filterset = AlertFilter(request.GET, queryset=alert_history(), request=request)
    # The API's tier filter is a TypedChoiceFilter, whose select has no empty choice: without
    # one, the page would filter by TIER 1 unasked.
    any_choice(filterset.form)
    context: dict[str, object] = {
        "filterset": filterset,
        "errors": [],
        "problem": problem,
        "can_resend": request.user.has_perm(RESEND_ALERT),
        "resendable": [str(state) for state in RESENDABLE_STATES],
        "watchlists": watchlists_of(request.user).order_by("name", "id"),
        # Where a resend returns to: this list with these filters (never the resend URL itself).
        "here": reverse("web:alerts") + (f"?{request.GET.urlencode()}" if request.GET else ""),
    }
    try:
        page = page_of(request.GET, filtered(filterset))
    except BadQuery as bad:
        context["errors"] = bad.messages
        return render(request, "web/alerts.html", context, status=400)
    for alert in page.object_list:
        alert.signal_url = (
            reverse("web:signal", args=[alert.signal_id]) if alert.signal_id else None
        )
    context["page"] = page
    return render(request, "web/alerts.html", context, status=status)


@login_required
@require_safe
def alerts_page(request: HttpRequest) -> HttpResponse:
    """The history, newest first, 25 a page, with the filters of /api/alerts/ (state, tier,
    kind, chat, since, until, watchlist). A bad filter (or a watchlist not the user's): the page
    says which, status 400."""
    return _alerts_page(request)


@login_required
@require_POST
def alert_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff (alerts.resend_alert) only, anyone else 403: a failed or unconfirmed alert goes back
    to pending and is sent again (`alert_resend`). Then back to the page it was pressed on
    (`next`, a local URL). Any other state: the page says so (409; 200 to htmx, which swaps
    nothing on a 4xx)."""
    if not request.user.has_perm(RESEND_ALERT):
        raise PermissionDenied("Resending an alert needs the alerts.resend_alert permission.")
    alert = get_object_or_404(alert_history(), pk=pk)
    if alert.state not in RESENDABLE_STATES or not alert_resend(alert):
        problem = (
            f"Alert #{alert.pk} is {alert.state}: only failed or unconfirmed alerts can be "
            "sent again."
        )
        return _alerts_page(request, problem=problem, status=200 if request.htmx else 409)
    messages.success(request, f"Alert #{alert.pk} queued to be sent again.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("web:alerts")
    return redirect(target)

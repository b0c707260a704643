"""The signal page (`/signals/<id>/`): what every alert links to. Signed-in users.

Who sees which signal is the signals API's rule (`tracking.services.signals_visible_to`): every
scanner's and the ranking's signals, and manual ones only their owner's (or anyone's for holders
of tracking.view_signal); any other signal, and one that does not exist, is a 404.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from tracking.models import Signal
from tracking.services import signals_visible_to
from web.signal_detail import price_path, ranking_row, scanner_inputs, signal_checks


def _visible_signal(request: HttpRequest, signal_id: int) -> Signal:
    signal = signals_visible_to(request.user).filter(pk=signal_id).first()
    if signal is None:
        raise Http404(f"no signal #{signal_id} that you may see")
    return signal


@login_required
def signal_page(request: HttpRequest, signal_id: int) -> HttpResponse:
    """The signal with its price path (candles, entry, barriers, horizon checks, MFE/MAE), its
    checks and BTC comparison as a table, and the scanner results behind it. Signed-in users who
    may see the signal; 404 otherwise."""
    signal = _visible_signal(request, signal_id)
    checks = signal_checks(signal)
    path = price_path(signal, checks)
    row = ranking_row(signal)
    return render(
        request,
        "web/signal.html",
        {
            "signal": signal,
            "checks": checks,
            "path": path,
            "chart": path.as_json(),
            "row": row,
            "components": list(row.breakdown.items()) if row else [],
            "inputs": scanner_inputs(signal, row),
        },
    )


@login_required
def signal_candles_csv(request: HttpRequest, signal_id: int) -> HttpResponse:
    """The signal page's candles as CSV (the chart's numbers): open time in UTC, open, high,
    low, close. Who may read it: as the signal page."""
    signal = _visible_signal(request, signal_id)
    path = price_path(signal, signal_checks(signal))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = re.sub(r"[^A-Za-z0-9]+", "-", signal.symbol)
    response["Content-Disposition"] = f'attachment; filename="signal-{signal.pk}-{name}-1h.csv"'
    writer = csv.writer(response)
    writer.writerow(["open_time_utc", "open", "high", "low", "close"])
    for candle in path.candles:
        writer.writerow(
            [
                _iso(candle["time"]),
                repr(candle["open"]),
                repr(candle["high"]),
                repr(candle["low"]),
                repr(candle["close"]),
            ]
        )
    return response


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

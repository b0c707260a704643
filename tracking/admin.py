"""Admin for signals: the record of what was said and at what price, browsable, never editable."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from scanners.admin import ReadOnlyAdmin, SignalDirectionFilter, direction_html, percent
from scoring.admin import TierFilter
from tracking.models import Signal


def score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = [
        "as_of",
        "symbol",
        "scanner",
        "direction_display",
        "entry_price",
        "scanner_score_display",
        "unified_score_display",
        "tier",
        "confidence",
        "completeness_display",
        "run_link",
    ]
    list_filter = ["scanner", TierFilter, SignalDirectionFilter]
    list_select_related = ["scan_run"]
    date_hierarchy = "as_of"
    search_fields = ["symbol"]
    search_help_text = "Search a symbol (BTC/USDT)."

    @admin.display(description="direction", ordering="direction")
    def direction_display(self, signal: Signal) -> str:
        return direction_html(signal.direction)

    @admin.display(description="scanner score", ordering="scanner_score")
    def scanner_score_display(self, signal: Signal) -> str:
        return score(signal.scanner_score)

    @admin.display(description="unified score", ordering="unified_score")
    def unified_score_display(self, signal: Signal) -> str:
        return score(signal.unified_score)

    @admin.display(description="completeness", ordering="completeness")
    def completeness_display(self, signal: Signal) -> str:
        return percent(signal.completeness)

    @admin.display(description="run", ordering="scan_run")
    def run_link(self, signal: Signal) -> str:
        if signal.scan_run_id is None:
            return "–"
        url = reverse("admin:scanners_scanrun_change", args=[signal.scan_run_id])
        return format_html('<a href="{}">#{}</a>', url, signal.scan_run_id)

"""Admin for signals and their outcome checks: the record of what was said, at what price, and how
it turned out; browsable, never editable."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from scanners.admin import ReadOnlyAdmin, SignalDirectionFilter, direction_html, percent
from scoring.admin import TierFilter
from tracking.models import OutcomeCheck, Signal
from tracking.outcomes import OPEN, overdue_before, sweep_time


def score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f} %"


class OutcomeCheckInline(admin.TabularInline):
    """The signal's five checks, in horizon order."""

    model = OutcomeCheck
    fields = [
        "horizon",
        "due_at",
        "status",
        "outcome",
        "exit_price",
        "return_pct",
        "adjusted_return_pct",
        "mfe_pct",
        "mae_pct",
        "first_barrier",
        "btc_return_pct",
        "excess_return_pct",
        "attempts",
        "checked_at",
        "unavailable_reason",
    ]
    readonly_fields = fields
    ordering = ["due_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    inlines = [OutcomeCheckInline]
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


class OverdueFilter(admin.SimpleListFilter):
    """Open checks whose next attempt should have run by now (market time in a replay): the
    sweeper, the tracker switch or the outcome workers need a look."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now, _ = sweep_time()
        overdue = {"status__in": OPEN, "run_at__lt": overdue_before(now)}
        if self.value() == "yes":
            return queryset.filter(**overdue)
        if self.value() == "no":
            return queryset.exclude(**overdue)
        return queryset


@admin.register(OutcomeCheck)
class OutcomeCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "due_at",
        "signal_link",
        "symbol",
        "direction_display",
        "horizon",
        "status",
        "outcome",
        "return_display",
        "adjusted_display",
        "excess_display",
        "first_barrier",
        "attempts",
        "checked_at",
        "unavailable_reason",
    ]
    list_filter = [OverdueFilter, "horizon", "outcome", "status", "first_barrier"]
    list_select_related = ["signal"]
    date_hierarchy = "due_at"
    search_fields = ["signal__symbol"]
    search_help_text = "Search a symbol (BTC/USDT)."
    ordering = ["-due_at", "-id"]

    @admin.display(description="signal", ordering="signal")
    def signal_link(self, check: OutcomeCheck) -> str:
        url = reverse("admin:tracking_signal_change", args=[check.signal_id])
        return format_html('<a href="{}">#{}</a>', url, check.signal_id)

    @admin.display(description="symbol", ordering="signal__symbol")
    def symbol(self, check: OutcomeCheck) -> str:
        return check.signal.symbol

    @admin.display(description="direction", ordering="signal__direction")
    def direction_display(self, check: OutcomeCheck) -> str:
        return direction_html(check.signal.direction)

    @admin.display(description="return", ordering="return_pct")
    def return_display(self, check: OutcomeCheck) -> str:
        return signed(check.return_pct)

    @admin.display(description="adjusted return", ordering="adjusted_return_pct")
    def adjusted_display(self, check: OutcomeCheck) -> str:
        return signed(check.adjusted_return_pct)

    @admin.display(description="excess over BTC", ordering="excess_return_pct")
    def excess_display(self, check: OutcomeCheck) -> str:
        return signed(check.excess_return_pct)

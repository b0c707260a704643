"""Admin for the scans.

Scan runs and their results are records of what happened: browsable, never editable.
Watchlists belong to their users and are editable, coins inline.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from scanners.api import RESULT_SCANNERS
from scanners.models import CoinFailure, ScanResult, ScanRun, ScanSchedule, Watchlist, WatchlistCoin
from scanners.scanning import UnknownSymbols, symbols_validate

# --- scans: runs and results are the record of what was computed; watchlists are the user's ----

DIRECTION_COLOURS = {"LONG": "#1a7f37", "SHORT": "#cf222e"}


def direction_html(direction: str | None) -> str:
    """LONG in green, SHORT in red, no direction as a dash."""
    if not direction:
        return "–"
    colour = DIRECTION_COLOURS.get(direction, "inherit")
    return format_html('<b style="color: {}">{}</b>', colour, direction)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


class ScannerFilter(admin.SimpleListFilter):
    """Scanner names from the known list, so the filter never scans a big table for its values."""

    title = "scanner"
    parameter_name = "scanner"
    names: tuple[str, ...] = RESULT_SCANNERS

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(name, name) for name in self.names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(scanner=self.value()) if self.value() else queryset


class DirectionFilter(admin.SimpleListFilter):
    """LONG, SHORT, or none: the scanner's rule did not fire."""

    title = "direction"
    parameter_name = "direction"
    with_none = True

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        choices = [("LONG", "LONG"), ("SHORT", "SHORT")]
        return [*choices, ("none", "none (no rule fired)")] if self.with_none else choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "none":
            return queryset.filter(direction__isnull=True)
        return queryset.filter(direction=self.value()) if self.value() else queryset


class SignalDirectionFilter(DirectionFilter):
    """LONG or SHORT: a signal or a ranked coin always has a direction."""

    with_none = False


class CoinFailureInline(admin.TabularInline):
    model = CoinFailure
    fields = ["symbol", "error", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "scanner",
        "status",
        "trigger",
        "as_of",
        "created_at",
        "duration_display",
        "coins_display",
        "batches_display",
        "signals_recorded",
        "watchlist",
    ]
    list_display_links = ["id", "scanner"]
    list_filter = ["scanner", "status", "trigger"]
    list_select_related = ["watchlist", "watchlist__owner"]
    date_hierarchy = "created_at"
    search_fields = ["=id", "watchlist__name"]
    search_help_text = "Search a run id or a watchlist name."
    readonly_fields = ["results_link", "duration_display"]
    fieldsets = [
        (None, {"fields": ["scanner", "status", "trigger", "as_of", "error", "results_link"]}),
        (
            "Progress",
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "coins_total",
                    "coins_done",
                    "coins_failed",
                    "batches_total",
                    "batches_done",
                    "signals_recorded",
                    "progressed_at",
                ]
            },
        ),
        (
            "Watchdog",
            {
                "description": "What the scan watchdog did to this run when it stalled.",
                "fields": [
                    "watchdog_stalls",
                    "watchdog_resends",
                    "watchdog_finishes",
                    "watchdog_log",
                ],
            },
        ),
        ("Scope", {"fields": ["watchlist", "requested_by", "symbols"]}),
    ]
    inlines = [CoinFailureInline]

    @admin.display(description="duration", ordering="finished_at")
    def duration_display(self, run: ScanRun) -> str:
        duration = run.duration
        if duration is None:
            return "–"
        seconds = duration.total_seconds()
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    @admin.display(description="coins done / failed / total")
    def coins_display(self, run: ScanRun) -> str:
        return f"{run.coins_done} / {run.coins_failed} / {run.coins_total}"

    @admin.display(description="batches")
    def batches_display(self, run: ScanRun) -> str:
        return f"{run.batches_done} / {run.batches_total}"

    @admin.display(description="results")
    def results_link(self, run: ScanRun) -> str:
        url = reverse("admin:scanners_scanresult_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">results of run #{}</a>', url, run.pk)


@admin.register(ScanResult)
class ScanResultAdmin(ReadOnlyAdmin):
    list_display = [
        "symbol",
        "scanner",
        "direction_display",
        "scores_display",
        "component_display",
        "completeness_display",
        "as_of",
        "run_link",
    ]
    list_filter = [ScannerFilter, DirectionFilter]
    list_select_related = ["run"]
    date_hierarchy = "as_of"
    search_fields = ["symbol"]
    search_help_text = "Search a symbol (BTC/USDT)."
    ordering = ["-as_of", "symbol", "scanner"]

    @admin.display(description="direction", ordering="direction")
    def direction_display(self, result: ScanResult) -> str:
        return direction_html(result.direction)

    @admin.display(description="scores")
    def scores_display(self, result: ScanResult) -> str:
        return ", ".join(
            f"{name} {value:.1f}" if isinstance(value, int | float) else f"{name} {value}"
            for name, value in (result.scores or {}).items()
        )

    @admin.display(description="component LONG / SHORT")
    def component_display(self, result: ScanResult) -> str:
        component = result.component or {}
        values = [component.get(direction) for direction in ("LONG", "SHORT")]
        return " / ".join("–" if value is None else f"{value:.1f}" for value in values)

    @admin.display(description="completeness", ordering="completeness")
    def completeness_display(self, result: ScanResult) -> str:
        return percent(result.completeness)

    @admin.display(description="run", ordering="run")
    def run_link(self, result: ScanResult) -> str:
        url = reverse("admin:scanners_scanrun_change", args=[result.run_id])
        return format_html('<a href="{}">#{}</a>', url, result.run_id)


@admin.register(CoinFailure)
class CoinFailureAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "run", "short_error", "created_at"]
    list_select_related = ["run"]
    date_hierarchy = "created_at"
    search_fields = ["symbol", "error"]

    @admin.display(description="error")
    def short_error(self, failure: CoinFailure) -> str:
        return failure.error if len(failure.error) <= 120 else failure.error[:119] + "…"


@admin.register(ScanSchedule)
class ScanScheduleAdmin(ReadOnlyAdmin):
    list_display = ["scanner", "next_due", "last_run"]
    list_select_related = ["last_run"]


class WatchlistCoinForm(forms.ModelForm):
    """A coin as the watchlist services take it: any usual spelling, a known spot market."""

    class Meta:
        model = WatchlistCoin
        fields = ["symbol"]

    def clean_symbol(self) -> str:
        try:
            return symbols_validate([self.cleaned_data["symbol"]])[0]
        except UnknownSymbols as error:
            raise forms.ValidationError(str(error)) from error
        except IndexError:
            raise forms.ValidationError("a coin needs a symbol") from None


class WatchlistCoinInline(admin.TabularInline):
    model = WatchlistCoin
    form = WatchlistCoinForm
    fields = ["symbol", "added_at"]
    readonly_fields = ["added_at"]
    extra = 1


@admin.register(Watchlist)
class WatchlistAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "coin_count", "updated_at"]
    list_filter = ["owner"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__username", "coins__symbol"]
    inlines = [WatchlistCoinInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(coin_total=Count("coins"))

    @admin.display(description="coins", ordering="coin_total")
    def coin_count(self, watchlist: Watchlist) -> int:
        return watchlist.coin_total

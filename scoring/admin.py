"""Admin for the unified ranking: a record of what was scored, browsable and never editable."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from scanners.admin import ReadOnlyAdmin, SignalDirectionFilter, direction_html, percent
from scoring.models import UnifiedRanking
from scoring.services import TIERS


class TierFilter(admin.SimpleListFilter):
    """Tiers from the known list, so the filter never scans the table for its values."""

    title = "tier"
    parameter_name = "tier"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(tier, tier) for tier in TIERS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(tier=self.value()) if self.value() else queryset


@admin.register(UnifiedRanking)
class UnifiedRankingAdmin(ReadOnlyAdmin):
    list_display = [
        "symbol",
        "score_display",
        "tier",
        "direction_display",
        "recommendation",
        "confidence",
        "confirmations",
        "completeness_display",
        "as_of",
        "run_link",
    ]
    list_filter = [TierFilter, SignalDirectionFilter, "recommendation", "confidence"]
    list_select_related = ["scan_run"]
    date_hierarchy = "as_of"
    search_fields = ["symbol"]
    search_help_text = "Search a symbol (BTC/USDT)."

    @admin.display(description="unified score", ordering="unified_score")
    def score_display(self, row: UnifiedRanking) -> str:
        return f"{row.unified_score:.1f}"

    @admin.display(description="direction", ordering="direction")
    def direction_display(self, row: UnifiedRanking) -> str:
        return direction_html(row.direction)

    @admin.display(description="completeness", ordering="completeness")
    def completeness_display(self, row: UnifiedRanking) -> str:
        return percent(row.completeness)

    @admin.display(description="run", ordering="scan_run")
    def run_link(self, row: UnifiedRanking) -> str:
        url = reverse("admin:scanners_scanrun_change", args=[row.scan_run_id])
        return format_html('<a href="{}">#{}</a>', url, row.scan_run_id)

"""Admin for the market store: history comes from the exchange and the importer, browsable and
never editable."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin
from market.models import Candle, FundingRate, ImportRecord, Market, OpenInterest, ReplayClock
from market.times import TIMEFRAMES


@admin.register(Market)
class MarketAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "exchange", "market_type", "listed_at", "listed_at_source", "active"]
    list_filter = ["exchange", "market_type", "active", "listed_at_source"]
    search_fields = ["symbol", "base"]


class TimeframeFilter(admin.SimpleListFilter):
    """Timeframes from the known list: the default filter would scan the table for its values."""

    title = "timeframe"
    parameter_name = "timeframe"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(timeframe, timeframe) for timeframe in TIMEFRAMES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(timeframe=self.value()) if self.value() else queryset


class CandleChangeList(ChangeList):
    """The candle list, with its date drill-down only once a search has narrowed it to markets.

    The drill-down lists the distinct years, months or days of every row the list holds; over a
    whole store of millions of candles that takes seconds on SQLite.
    """

    def __init__(self, request: HttpRequest, *args: object, **kwargs: object) -> None:
        super().__init__(request, *args, **kwargs)
        if not self.query:
            self.date_hierarchy = None


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    list_display = [
        "market",
        "timeframe",
        "series",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "taker_buy_volume",
    ]
    list_filter = [TimeframeFilter, "series", "market__market_type"]
    list_select_related = ["market"]
    date_hierarchy = "open_time"
    search_fields = ["market__symbol"]
    search_help_text = "Search a symbol (BTC/USDT) to drill down by date."

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return CandleChangeList


@admin.register(FundingRate)
class FundingRateAdmin(ReadOnlyAdmin):
    list_display = ["market", "funding_time", "rate"]
    list_filter = ["market__exchange"]
    list_select_related = ["market"]
    date_hierarchy = "funding_time"
    search_fields = ["market__symbol"]


@admin.register(OpenInterest)
class OpenInterestAdmin(ReadOnlyAdmin):
    list_display = ["market", "timestamp", "open_interest", "open_interest_value"]
    list_filter = ["market__exchange"]
    list_select_related = ["market"]
    date_hierarchy = "timestamp"
    search_fields = ["market__symbol"]


@admin.register(ImportRecord)
class ImportRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "imported_at",
        "market",
        "kind",
        "timeframe",
        "series",
        "rows",
        "inserted",
        "gaps",
        "first_time",
        "last_time",
    ]
    list_filter = ["kind", "timeframe", "series"]
    list_select_related = ["market"]
    search_fields = ["market__symbol", "path", "sha256"]


@admin.register(ReplayClock)
class ReplayClockAdmin(ReadOnlyAdmin):
    list_display = ["market_time", "start", "end", "step", "ticks", "finished", "updated_at"]

"""The unified-ranking API: each coin's latest unified score, best first.

The view parses the filters (a django-filter FilterSet) and the page, and answers `ranking_page`:
the page of `scoring.ranking.ranking_latest` serialized with each coin's rank, kept in the read
cache (core/read_cache.py) until a scan's ranking update bumps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core import read_cache
from core.api import RenderedJSON
from scanners.watchlist_params import WATCHLIST_PARAM_HELP, watchlist_param
from scoring.models import UnifiedRanking
from scoring.ranking import ranking_latest
from scoring.services import DIRECTIONS, TIERS


class RankingFilter(filters.FilterSet):
    """The ranking's filters; the filtering itself is `ranking_latest`'s."""

    tier = filters.ChoiceFilter(choices=[(t, t) for t in TIERS], help_text="Only this tier.")
    direction = filters.ChoiceFilter(
        choices=[(d, d) for d in DIRECTIONS], help_text="Only coins ranked in this direction."
    )
    min_score = filters.NumberFilter(
        min_value=0, max_value=100, help_text="Only unified scores at least this (0–100)."
    )
    watchlist = extend_schema_field(OpenApiTypes.STR)(
        filters.CharFilter(help_text=WATCHLIST_PARAM_HELP)
    )

    class Meta:
        model = UnifiedRanking
        fields = ["tier", "direction", "min_score", "watchlist"]

    def selection(self) -> RankingSelection | None:
        """What `ranking_latest` is asked for, and whose it is when a watchlist narrows it; None
        when the watchlist is empty (it ranks nothing, not everything). 404 for a watchlist that
        is not the user's (`watchlist_param`)."""
        params = self.form.cleaned_data
        watchlist = (
            watchlist_param(self.request, params["watchlist"]) if params.get("watchlist") else None
        )
        selected: dict = {
            "tier": params.get("tier") or None,
            "direction": params.get("direction") or None,
            "min_score": params.get("min_score"),
        }
        if watchlist is None:
            return RankingSelection(selected)
        symbols = sorted(watchlist.coins.values_list("symbol", flat=True))
        if not symbols:
            return None
        return RankingSelection(
            {**selected, "symbols": symbols}, owner=(watchlist.pk, watchlist.owner_id)
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet[UnifiedRanking]:
        selection = self.selection()
        return (
            UnifiedRanking.objects.none()
            if selection is None
            else ranking_latest(selection.filters)
        )


@dataclass(frozen=True)
class RankingSelection:
    """The filters of `ranking_latest`; `owner` = (watchlist, its owner) when a watchlist narrowed
    them, so one user's watchlist answer is cached apart from everyone else's."""

    filters: dict[str, Any]
    owner: tuple[int, int] | None = None


def ranking_page(
    selection: RankingSelection | None, *, offset: int, limit: int
) -> tuple[int, list]:
    """The ranking's count and its rows [offset, offset + limit) as the API shows them
    (RankingSerializer, with each row's rank), from the read cache (namespace RANKING: bumped by
    every ranking write) or computed. What the API view and the pages both read."""
    if selection is None:
        return 0, []

    def compute() -> tuple[int, list[dict[str, Any]]]:
        ranking = ranking_latest(selection.filters)
        count = ranking.count()
        rows = list(ranking[offset : offset + limit]) if count > 0 and offset <= count else []
        for position, row in enumerate(rows, start=offset + 1):
            row.rank = position
        return count, [dict(item) for item in RankingSerializer(rows, many=True).data]

    key = ("unified_ranking", sorted(selection.filters.items()), selection.owner, offset, limit)
    return read_cache.cached((read_cache.RANKING,), key, compute)


def ranking_page_json(
    selection: RankingSelection | None, *, offset: int, limit: int
) -> tuple[int, RenderedJSON]:
    """`ranking_page` with its rows already encoded for the API's renderer, cached as well: a
    cached page is then answered without decoding and encoding its rows again (~6 ms of 100
    rows with their breakdowns)."""
    if selection is None:
        return 0, RenderedJSON.of([])

    def compute() -> tuple[int, RenderedJSON]:
        count, rows = ranking_page(selection, offset=offset, limit=limit)
        return count, RenderedJSON.of(rows)

    key = (
        "unified_ranking_json",
        sorted(selection.filters.items()),
        selection.owner,
        offset,
        limit,
    )
    return read_cache.cached((read_cache.RANKING,), key, compute)


class _Counted:
    """What the paginator counts (the page is cut already): the whole ranking's count."""

    def __init__(self, count: int) -> None:
        self.total = count

    def count(self) -> int:
        return self.total

    def __getitem__(self, _page: slice) -> list:
        return []


class BreakdownComponentSerializer(serializers.Serializer):
    label = serializers.CharField()
    direction = serializers.CharField()
    score = serializers.FloatField(
        allow_null=True, help_text="The component's score 0–100; null where missing."
    )
    weight = serializers.FloatField(help_text="Nominal weight.")
    renormalised_weight = serializers.FloatField(
        help_text="Weight after dropping the missing components (0 where missing)."
    )
    contribution = serializers.FloatField(
        allow_null=True, help_text="renormalised_weight × score: its share of the unified score."
    )
    available = serializers.BooleanField()
    missing = serializers.CharField(allow_null=True, help_text="Why it is missing, if it is.")
    fired = serializers.CharField(
        allow_null=True, help_text="The direction the scanner's own rule fired in, if any."
    )
    confirms = serializers.BooleanField(help_text="Counts as a confirmation.")
    as_of = serializers.CharField(
        allow_null=True, help_text="Time of the scanner result used (ISO 8601)."
    )


class RankingSerializer(serializers.ModelSerializer):
    rank = serializers.SerializerMethodField(
        help_text="Position in this (filtered) ranking; 1 is the highest unified score."
    )
    breakdown = serializers.DictField(
        child=BreakdownComponentSerializer(),
        help_text="Per component (smart_money, mss, rsi, social, whale, volume) in the coin's "
        "direction.",
    )
    score_long = serializers.FloatField(allow_null=True, help_text="Unified score if LONG.")
    score_short = serializers.FloatField(allow_null=True, help_text="Unified score if SHORT.")

    class Meta:
        model = UnifiedRanking
        fields = [
            "rank",
            "symbol",
            "unified_score",
            "tier",
            "recommendation",
            "direction",
            "confidence",
            "confirmations",
            "confirmed_by",
            "completeness",
            "score_long",
            "score_short",
            "breakdown",
            "reasons",
            "notes",
            "as_of",
            "scan_run",
        ]

    def get_rank(self, row: UnifiedRanking) -> int:
        return row.rank


@extend_schema_view(
    list=extend_schema(
        operation_id="unified_ranking_list",
        summary="The unified ranking",
        description="Each coin's latest unified score (0–100), best first, with its tier, "
        "recommendation, direction, confidence, confirmations, completeness (the share of the "
        "component weights that had data) and the per-component breakdown. Tiers: TIER_1 ≥ 85 "
        "(with enough confirmations and completeness), TIER_2 ≥ 70, TIER_3 ≥ 55, else TIER_4.",
    )
)
class UnifiedRankingViewSet(viewsets.GenericViewSet):
    queryset = UnifiedRanking.objects.none()  # the rows come from ranking_latest (RankingFilter)
    serializer_class = RankingSerializer
    filterset_class = RankingFilter

    def list(self, request: Request) -> Response:
        # The filters as DjangoFilterBackend checks them (a bad one is a 400 naming it), then
        # the page from `ranking_page_json`, then the paginator's envelope as for any list.
        filterset = self.filterset_class(request.query_params, request=request)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        selection = filterset.selection()
        paginator = self.paginator
        limit, offset = paginator.get_limit(request), paginator.get_offset(request)
        count, rows = ranking_page_json(selection, offset=offset, limit=limit)
        paginator.paginate_queryset(_Counted(count), request, view=self)  # count, links
        return paginator.get_paginated_response(rows)

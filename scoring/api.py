"""The unified-ranking API: each coin's latest unified score, best first.

The view parses the filters (a django-filter FilterSet), calls `scoring.ranking.ranking_latest` and
serializes the page with each coin's rank.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

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

    def filter_queryset(self, queryset: QuerySet) -> QuerySet[UnifiedRanking]:
        params = self.form.cleaned_data
        watchlist = (
            watchlist_param(self.request, params["watchlist"]) if params.get("watchlist") else None
        )
        selected: dict = {
            "tier": params.get("tier") or None,
            "direction": params.get("direction") or None,
            "min_score": params.get("min_score"),
        }
        if watchlist is not None:
            symbols = list(watchlist.coins.values_list("symbol", flat=True))
            if not symbols:  # an empty watchlist ranks nothing (not everything)
                return UnifiedRanking.objects.none()
            selected["symbols"] = symbols
        return ranking_latest(selected)


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
        ranking = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(ranking)
        offset = self.paginator.offset
        for position, row in enumerate(page, start=1):
            row.rank = offset + position
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

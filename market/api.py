"""The market API: markets, point-in-time candles and the replay clock.

Views parse the request, call the candle store or the replay clock and serialize the answer; the
envelope, errors and pagination are core/api.py's. Any signed-in user reads the market; moving
the replay clock is staff's (core/permissions.py).
"""

from __future__ import annotations

from datetime import UTC

import numpy as np
from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.filters import SearchFilter
from rest_framework.request import Request
from rest_framework.response import Response

from market import candle_store
from market.models import Market, PriceSeries, ReplayClock
from market.replay_clock import get_clock, market_now
from market.times import TIMEFRAMES, ms_to_datetime
from market.values import CandleSeries

MAX_CANDLES = 1000

# --- markets ---------------------------------------------------------------------------------


class MarketSerializer(serializers.ModelSerializer):
    class Meta:
        model = Market
        fields = [
            "id",
            "exchange",
            "symbol",
            "base",
            "quote",
            "market_type",
            "listed_at",
            "listed_at_source",
            "active",
        ]


@extend_schema_view(
    list=extend_schema(
        summary="Markets",
        description="Stored markets. `search` matches part of the symbol. `active` is the "
        "market's status as last recorded, not as of the replay clock.",
    ),
    retrieve=extend_schema(summary="One market"),
)
class MarketViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Market.objects.all()
    serializer_class = MarketSerializer
    filter_backends = [DjangoFilterBackend, SearchFilter]
    filterset_fields = ["market_type", "exchange", "active"]
    search_fields = ["symbol"]


# --- candles ---------------------------------------------------------------------------------


class CandleQuerySerializer(serializers.Serializer):
    symbol = serializers.CharField(
        help_text="ccxt unified symbol: BTC/USDT for spot, BTC/USDT:USDT for the perpetual."
    )
    exchange = serializers.CharField(
        required=False, help_text="Exchange id; default: the EXCHANGE setting."
    )
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES), default="1h")
    series = serializers.ChoiceField(choices=PriceSeries.choices, default=PriceSeries.TRADES)
    as_of = serializers.DateTimeField(
        required=False,
        default_timezone=UTC,
        help_text="ISO 8601; a time without offset is UTC. Default and upper bound: the current "
        "market time (the replay clock in a replay).",
    )
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CANDLES, default=100)

    def validate(self, attrs: dict) -> dict:
        exchange = attrs.get("exchange") or settings.EXCHANGE
        market = candle_store.markets_by_symbol([attrs["symbol"]], exchange=exchange).get(
            attrs["symbol"]
        )
        if market is None:
            raise serializers.ValidationError(
                {"symbol": [f"no market {attrs['symbol']} on {exchange} in the store"]}
            )
        attrs["market"] = market
        return attrs


class CandleSerializer(serializers.Serializer):
    open_time = serializers.DateTimeField()
    close_time = serializers.DateTimeField()
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField(help_text="Base-asset volume.")
    taker_buy_volume = serializers.FloatField(
        allow_null=True, help_text="Base-asset volume bought by takers; null where unknown."
    )


@extend_schema_serializer(many=False)
class CandleSeriesSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    market_type = serializers.CharField()
    timeframe = serializers.CharField()
    series = serializers.CharField()
    as_of = serializers.DateTimeField(help_text="The time the candles were read as of.")
    candles = CandleSerializer(many=True, help_text="Closed candles, oldest first.")


def _candle_rows(series: CandleSeries) -> list[dict]:
    close_times = series.close_time
    taker = series.taker_buy_volume
    return [
        {
            "open_time": ms_to_datetime(series.open_time[i]),
            "close_time": ms_to_datetime(close_times[i]),
            "open": float(series.open[i]),
            "high": float(series.high[i]),
            "low": float(series.low[i]),
            "close": float(series.close[i]),
            "volume": float(series.volume[i]),
            "taker_buy_volume": None if np.isnan(taker[i]) else float(taker[i]),
        }
        for i in range(len(series))
    ]


class CandlesViewSet(viewsets.GenericViewSet):
    pagination_class = None
    filter_backends = []
    serializer_class = CandleSeriesSerializer

    @extend_schema(
        operation_id="candles_retrieve",
        summary="Closed candles of one market as of a time",
        description="The newest `limit` candles whose close time is at or before `as_of`, "
        "oldest first; a candle still open at `as_of` is never included, and holes in the "
        "history stay holes. An `as_of` after the current market time is read as the current "
        "market time.",
        parameters=[CandleQuerySerializer],
        responses={
            200: CandleSeriesSerializer,
            400: OpenApiResponse(description="A parameter is invalid; the body names it."),
        },
    )
    def list(self, request: Request) -> Response:
        query = CandleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        market = params["market"]
        now = market_now()
        as_of = min(params.get("as_of") or now, now)
        series = candle_store.closed_candles(
            market,
            timeframe=params["timeframe"],
            series=params["series"],
            as_of=as_of,
            limit=params["limit"],
        )
        body = {
            "symbol": market.symbol,
            "exchange": market.exchange,
            "market_type": market.market_type,
            "timeframe": params["timeframe"],
            "series": params["series"],
            "as_of": as_of,
            "candles": _candle_rows(series),
        }
        return Response(CandleSeriesSerializer(body).data)


# --- replay clock ----------------------------------------------------------------------------


@extend_schema_serializer(many=False)
class ReplayClockSerializer(serializers.ModelSerializer):
    step_seconds = serializers.SerializerMethodField(help_text="Market seconds per tick.")

    class Meta:
        model = ReplayClock
        fields = [
            "market_time",
            "start",
            "end",
            "step",
            "step_seconds",
            "ticks",
            "finished",
            "updated_at",
        ]

    def get_step_seconds(self, clock: ReplayClock) -> float:
        return clock.step.total_seconds()


class ReplayClockViewSet(viewsets.GenericViewSet):
    pagination_class = None
    filter_backends = []
    serializer_class = ReplayClockSerializer

    @extend_schema(
        operation_id="replay_clock_retrieve",
        summary="The replay clock",
        description="The market time the replay stands at, its range and its progress.",
        responses={
            200: ReplayClockSerializer,
            404: OpenApiResponse(description="No clock yet: the candle store is empty."),
        },
    )
    def list(self, request: Request) -> Response:
        clock = get_clock()
        if clock is None:
            raise NotFound(
                "no replay clock yet: it is created on the first tick once the store holds "
                "1h spot candles"
            )
        return Response(ReplayClockSerializer(clock).data)

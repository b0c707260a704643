"""The performance API under /api/performance/: how the signals turned out, with the uncertainty
shown, the outcome tracker's switch and stats, and tracking a signal given by an API client.

The original product's endpoints and response fields, plus n, 95 % Wilson intervals, decisive win
rate, expectancy, profit factor, excess return over BTC and "too few to judge"
(`tracking.analytics` defines every number). Views validate the query (a bad one is a 400 naming
the parameter), call a service and return its data; the envelope is core/api.py's. The services
are cached (tracking/performance_cache.py); the views take their answers already encoded
(`service.rendered(...)`), so a cached answer is written out as stored.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core.api import BodySerializer, Conflict
from core.permissions import CanControlTracker
from core.throttling import TrackSignalThrottle
from market.replay_clock import market_now
from scanners.scanning import UnknownSymbols, normalize_symbol, symbols_validate
from scanners.watchlist_params import WATCHLIST_PARAM_HELP, WatchlistParamField
from scoring.services import TIERS
from tracking import analytics, performance_filters, recommendations, windows
from tracking.api import SignalSerializer
from tracking.models import MANUAL, Direction, Horizon, SignalScanner
from tracking.outcomes import tracker_set_enabled, tracker_stats
from tracking.services import cooldown, manual_signal_track

MAX_DAYS = 3650
MAX_TOP_LIMIT = 100
# Signals tracked through the API are filed under this one, whatever the client says.
MANUAL_SCANNER = MANUAL
SCANNER_CHOICES = list(SignalScanner.values)

SCANNERS_TEXT = (
    ", ".join(SCANNER_CHOICES)
    + " (`unified`: the unified ranking; `manual`: tracked through the API)"
)


def scanner_validate(value: str) -> str:
    if value not in SCANNER_CHOICES:
        raise serializers.ValidationError(
            f"unknown scanner {value!r}; expected one of {', '.join(SCANNER_CHOICES)}"
        )
    return value


def symbol_validate(value: str) -> str:
    """The spot symbol (BTC → BTC/USDT) of a market of the exchange, else a field error."""
    try:
        return symbols_validate([value])[0]
    except (UnknownSymbols, IndexError):
        raise serializers.ValidationError(
            f"no {settings.EXCHANGE} spot market {normalize_symbol(value)}"
        ) from None


# --- query parameters ---------------------------------------------------------------------------


def _moment(value: str, parameter: str) -> Any:
    try:
        return windows.moment_parse(value, parameter)
    except windows.WindowError as error:
        raise serializers.ValidationError(error.message) from None


SINCE_TEXT = (
    "Signals from this market time on (by their as_of, included): an ISO 8601 date (its "
    "midnight UTC) or time (UTC without an offset), e.g. 2024-03-01 or 2024-03-01T12:00Z. "
    "Not with `days`."
)
UNTIL_TEXT = (
    "Signals up to this market time (by their as_of, included, as in /api/signals/): an ISO "
    "8601 date (its midnight UTC: until=2024-04-01 takes a signal at 2024-04-01T00:00, nothing "
    "later) or time. Default: now (the replay clock in a replay). Not with `days`."
)


def _days_text(default: int) -> str:
    return (
        f"Signals of the last N days of market time (by their as_of), up to now (the replay "
        f"clock in a replay). Default {default} unless `since` or `until` is given; not with "
        "them."
    )


class PerformanceQuerySerializer(serializers.Serializer):
    """The filters every analytics endpoint takes; the window is `days` (default per endpoint,
    30 here) or `since`/`until` (tracking/windows.py), never both."""

    default_days = 30

    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DAYS,
        help_text=_days_text(30),
    )
    # Strings in the schema, parsed by windows.moment_parse (as the command parses them).
    since = serializers.CharField(required=False, max_length=64, help_text=SINCE_TEXT)
    until = serializers.CharField(required=False, max_length=64, help_text=UNTIL_TEXT)
    horizon = serializers.ChoiceField(
        choices=Horizon.choices,
        default=performance_filters.HEADLINE_HORIZON,
        help_text="The outcome horizon the numbers are of. Default 24h.",
    )
    # Plain strings in the schema (validated below): a ChoiceField would add a third choice set
    # named "scanner" to the schema's enums (see tracking.api.SignalSerializer).
    scanner = serializers.CharField(
        required=False,
        help_text=f"Only signals of this scanner: {SCANNERS_TEXT}. Manual signals count only "
        "with scanner=manual, and then only your own.",
    )
    tier = serializers.ChoiceField(
        choices=list(TIERS), required=False, help_text="Only signals recorded in this tier."
    )
    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    symbol = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Only this coin: BTC, BTCUSDT and BTC/USDT all mean BTC/USDT.",
    )
    watchlist = WatchlistParamField(required=False, help_text=WATCHLIST_PARAM_HELP)

    def validate_scanner(self, value: str) -> str:
        return scanner_validate(value)

    def validate_symbol(self, value: str) -> str:
        return symbol_validate(value)

    def validate_since(self, value: str) -> Any:
        return _moment(value, "since")

    def validate_until(self, value: str) -> Any:
        return _moment(value, "until")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            windows.window_check(attrs.get("days"), attrs.get("since"), attrs.get("until"))
        except windows.WindowError as error:
            raise serializers.ValidationError({error.parameter: [error.message]}) from None
        return attrs

    def filters(self) -> performance_filters.PerformanceFilters:
        params = self.validated_data
        watchlist = params.get("watchlist")
        since, until = params.get("since"), params.get("until")
        explicit = since is not None or until is not None
        return performance_filters.PerformanceFilters(
            days=None if explicit else params.get("days", self.default_days),
            since=since,
            until=until,
            horizon=params.get("horizon", performance_filters.HEADLINE_HORIZON),
            scanner=params.get("scanner"),
            tier=params.get("tier"),
            direction=params.get("direction"),
            symbol=params.get("symbol"),
            watchlist_id=watchlist.pk if watchlist is not None else None,
            owner_id=self.context["request"].user.pk,
        )


class WeekQuerySerializer(PerformanceQuerySerializer):
    default_days = 7

    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DAYS,
        help_text=_days_text(7),
    )


class IntervalQuerySerializer(PerformanceQuerySerializer):
    horizon = None  # by-interval shows every horizon


class TopQuerySerializer(WeekQuerySerializer):
    limit = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=MAX_TOP_LIMIT,
        help_text=f"Signals and symbols per list, 1 to {MAX_TOP_LIMIT}. Default 10.",
    )


def parse(request: Request, serializer_class: type[PerformanceQuerySerializer]) -> Any:
    query = serializer_class(data=request.query_params, context={"request": request})
    query.is_valid(raise_exception=True)
    return query


# --- response schemas (documentation; the views return the services' data) ---------------------


def _period_days() -> serializers.IntegerField:
    return serializers.IntegerField(
        allow_null=True, help_text="`days` of the window; null when it is since/until."
    )


def _bound(name: str) -> serializers.DateTimeField:
    return serializers.DateTimeField(
        allow_null=True, help_text=f"`{name}` of the window as given (UTC); null when not given."
    )


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField(help_text="Lower bound of the 95 % Wilson interval, percent.")
    high = serializers.FloatField(help_text="Upper bound of the 95 % Wilson interval, percent.")
    successes = serializers.IntegerField()
    n = serializers.IntegerField(help_text="The rate's denominator.")


def _rate_field(text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=f"{text}, percent; null when n = 0.")


class MetricsSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Checked outcomes.")
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    neutral = serializers.IntegerField()
    win_rate = _rate_field("wins / n (neutral included)")
    win_rate_ci = IntervalSerializer()
    loss_rate = _rate_field("losses / n")
    loss_rate_ci = IntervalSerializer()
    neutral_rate = _rate_field("neutral / n")
    neutral_rate_ci = IntervalSerializer()
    decisive_win_rate = _rate_field("wins / (wins + losses)")
    decisive_win_rate_ci = IntervalSerializer()
    avg_win_pct = serializers.FloatField(
        allow_null=True, help_text="Mean direction-adjusted return of the wins."
    )
    avg_loss_pct = serializers.FloatField(
        allow_null=True, help_text="Mean direction-adjusted return of the losses."
    )
    expectancy_pct = serializers.FloatField(
        allow_null=True, help_text="Mean direction-adjusted return per checked outcome."
    )
    total_pnl_pct = serializers.FloatField(help_text="Sum of the direction-adjusted returns.")
    gross_profit_pct = serializers.FloatField(help_text="Sum of the positive adjusted returns.")
    gross_loss_pct = serializers.FloatField(help_text="Sum of the negative adjusted returns.")
    profit_factor = serializers.FloatField(
        allow_null=True, help_text="gross profit / |gross loss|; null when nothing lost money."
    )
    avg_excess_return_pct = serializers.FloatField(
        allow_null=True, help_text="Mean return over taking the same side on BTC."
    )
    excess_n = serializers.IntegerField(help_text="Checked outcomes with a BTC comparison.")
    judgement = serializers.CharField(
        help_text="'too few to judge' below ANALYTICS_MIN_SAMPLE; else excellent, good, poor or "
        "inconclusive, by the win rate's interval."
    )


class FiltersSerializer(serializers.Serializer):
    days = serializers.IntegerField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    horizon = serializers.CharField()
    scanner = serializers.CharField(allow_null=True)
    tier = serializers.CharField(allow_null=True)
    direction = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(allow_null=True)
    watchlist = serializers.IntegerField(allow_null=True)


class StatsSerializer(MetricsSerializer):
    period_days = _period_days()
    since = _bound("since")
    until = _bound("until")
    horizon = serializers.CharField()
    as_of = serializers.DateTimeField(
        help_text="Market time the period ends at (included): `until`, else now."
    )
    filters = FiltersSerializer()
    min_sample = serializers.IntegerField(help_text="ANALYTICS_MIN_SAMPLE.")
    total_signals = serializers.IntegerField(help_text="Signals in the period.")
    outcomes_checked = serializers.IntegerField(help_text="Their outcomes checked at the horizon.")
    outcomes_pending = serializers.IntegerField(help_text="Checks at the horizon still open.")
    outcomes_unavailable = serializers.IntegerField(
        help_text="Checks at the horizon that found no price."
    )


class GroupSerializer(MetricsSerializer):
    group = serializers.CharField(
        allow_null=True, help_text="The scanner, tier, horizon or direction (null: no tier)."
    )


class BreakdownSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    period_days = _period_days()
    since = _bound("since")
    until = _bound("until")
    horizon = serializers.CharField(allow_null=True, help_text="Null in by-interval.")
    as_of = serializers.DateTimeField()
    min_sample = serializers.IntegerField()
    groups = GroupSerializer(many=True)


class PerformerSignalSerializer(serializers.Serializer):
    signal_id = serializers.IntegerField()
    scanner = serializers.CharField()
    symbol = serializers.CharField()
    direction = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    as_of = serializers.DateTimeField()
    entry_price = serializers.FloatField()
    horizon = serializers.CharField()
    exit_price = serializers.FloatField()
    return_pct = serializers.FloatField()
    adjusted_return_pct = serializers.FloatField()
    excess_return_pct = serializers.FloatField(allow_null=True)
    outcome = serializers.CharField()


class PerformerSymbolSerializer(MetricsSerializer):
    symbol = serializers.CharField()


class TopPerformersSerializer(serializers.Serializer):
    period_days = _period_days()
    since = _bound("since")
    until = _bound("until")
    horizon = serializers.CharField()
    as_of = serializers.DateTimeField()
    limit = serializers.IntegerField()
    min_signals_per_symbol = serializers.IntegerField()
    best_signals = PerformerSignalSerializer(many=True)
    worst_signals = PerformerSignalSerializer(many=True)
    best_symbols = PerformerSymbolSerializer(many=True, help_text="By expectancy.")
    worst_symbols = PerformerSymbolSerializer(many=True, help_text="By expectancy.")


class EvidenceSerializer(serializers.Serializer):
    group = serializers.CharField()
    win_rate = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    n = serializers.IntegerField()


class RecommendationSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=["URGENT", "HIGH", "MEDIUM", "LOW"])
    topic = serializers.CharField(help_text="overall, tier_1, best_scanner or worst_scanner.")
    message = serializers.CharField()
    evidence = EvidenceSerializer()


class WithheldSerializer(serializers.Serializer):
    topic = serializers.CharField()
    reason = serializers.CharField()


class RecommendationsSerializer(serializers.Serializer):
    period_days = _period_days()
    since = _bound("since")
    until = _bound("until")
    horizon = serializers.CharField()
    as_of = serializers.DateTimeField()
    min_sample = serializers.IntegerField()
    recommendations = RecommendationSerializer(many=True)
    withheld = WithheldSerializer(many=True, help_text="Advice not given, and why.")


class ReportSerializer(serializers.Serializer):
    summary = StatsSerializer()
    by_scanner = GroupSerializer(many=True)
    by_tier = GroupSerializer(many=True)
    by_interval = GroupSerializer(many=True)
    by_signal_type = GroupSerializer(many=True)
    top_performers = TopPerformersSerializer()
    recommendations = RecommendationsSerializer()


class TrackerStatsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    replay = serializers.BooleanField(help_text="Market time is the replay clock's.")
    now = serializers.DateTimeField(help_text="The market time the stats are of.")
    pending = serializers.IntegerField(help_text="Open checks (pending or claimed).")
    due = serializers.IntegerField()
    overdue = serializers.IntegerField()
    done = serializers.IntegerField()
    unavailable = extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}}
    )(serializers.DictField(help_text="Checks without a price, by reason."))
    last_sweep_at = serializers.DateTimeField(allow_null=True)
    last_sweep_market_time = serializers.DateTimeField(allow_null=True)


class TrackSignalSerializer(BodySerializer):
    symbol = serializers.CharField(
        max_length=64, help_text="BTC, BTCUSDT or BTC/USDT; needs a spot market of the exchange."
    )
    direction = serializers.ChoiceField(choices=Direction.choices)
    price = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Entry price, greater than 0. Default: the market price (the close of the "
        "last 1h candle). A given price outside that hour's low–high widened by "
        "MANUAL_PRICE_TOLERANCE_PCT (20 %) is refused.",
    )
    score = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=100,
        help_text="The signal's score 0–100 (stored as its scanner score).",
    )
    tier = serializers.ChoiceField(choices=list(TIERS), required=False, allow_null=True)
    scanner = serializers.CharField(
        default=MANUAL_SCANNER,
        help_text="Always manual: a signal tracked by hand is yours and never a scanner's.",
    )

    def validate_scanner(self, value: str) -> str:
        if value != MANUAL_SCANNER:
            raise serializers.ValidationError(
                f"a signal tracked by hand is filed under {MANUAL_SCANNER}, never under a "
                f"scanner ({value!r}): a scanner's statistics and cooldown are its own"
            )
        return value

    def validate_symbol(self, value: str) -> str:
        return symbol_validate(value)

    def validate_price(self, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise serializers.ValidationError("must be a finite number greater than 0")
        return value


# --- views --------------------------------------------------------------------------------------

HEADLINE = (
    "The numbers are of each signal's outcome at `horizon` (default 24h) for signals whose as_of "
    "lies in the last `days` days of market time, or in [`since`, `until`] (both included). "
    "win_rate = wins / checked outcomes (neutral included); decisive_win_rate = wins / (wins + "
    "losses); every rate has its 95 % Wilson interval and n, and a group with fewer than "
    "ANALYTICS_MIN_SAMPLE checked outcomes is "
    "'too few to judge'."
)


def _breakdown(
    summary: str, name: str, query: type = PerformanceQuerySerializer, description: str = HEADLINE
) -> Any:
    return extend_schema(
        operation_id=f"performance_by_{name}",
        summary=summary,
        description=description,
        parameters=[query],
        responses=BreakdownSerializer,
    )


class PerformanceViewSet(viewsets.GenericViewSet):
    pagination_class = None
    filter_backends = []
    serializer_class = StatsSerializer

    @extend_schema(
        operation_id="performance_stats",
        summary="Performance of the signals",
        description=HEADLINE,
        parameters=[PerformanceQuerySerializer],
        responses=StatsSerializer,
    )
    def stats(self, request: Request) -> Response:
        filters = parse(request, PerformanceQuerySerializer).filters()
        return Response(analytics.performance_summary.rendered(filters))

    @extend_schema(
        operation_id="performance_report",
        summary="Performance report",
        description="The summary, the breakdowns by scanner, tier, interval and signal type, the "
        "top performers and the recommendations (made only where the data supports them), for "
        "the last `days` (default 7). " + HEADLINE,
        parameters=[WeekQuerySerializer],
        responses=ReportSerializer,
    )
    def report(self, request: Request) -> Response:
        filters = parse(request, WeekQuerySerializer).filters()
        return Response(analytics.performance_report.rendered(filters))

    @_breakdown("Performance by scanner", "scanner")
    def by_scanner(self, request: Request) -> Response:
        return self._by("scanner", request)

    @_breakdown("Performance by tier", "tier")
    def by_tier(self, request: Request) -> Response:
        return self._by("tier", request)

    @_breakdown(
        "Performance by interval",
        "interval",
        IntervalQuerySerializer,
        "The numbers at each of the five horizons (1h, 4h, 24h, 7d, 30d) for signals whose as_of "
        "lies in the last `days` days of market time; every rate with its 95 % Wilson interval "
        "and n, a group below ANALYTICS_MIN_SAMPLE 'too few to judge'.",
    )
    def by_interval(self, request: Request) -> Response:
        return self._by("horizon", request, IntervalQuerySerializer)

    @_breakdown("Performance by signal type (direction)", "signal_type")
    def by_signal_type(self, request: Request) -> Response:
        return self._by("direction", request)

    @_breakdown("Performance by symbol", "symbol")
    def by_symbol(self, request: Request) -> Response:
        return self._by("symbol", request)

    def _by(
        self,
        dimension: str,
        request: Request,
        query: type[PerformanceQuerySerializer] = PerformanceQuerySerializer,
    ) -> Response:
        filters = parse(request, query).filters()
        return Response(analytics.performance_by.rendered(dimension, filters))

    @extend_schema(
        operation_id="performance_top_performers",
        summary="Best and worst signals and symbols",
        description="The `limit` best and worst signals by direction-adjusted return at the "
        f"horizon, and symbols by expectancy (a symbol needs at least "
        f"{analytics.TOP_SYMBOL_MIN_SIGNALS} checked outcomes), for the last `days` (default 7).",
        parameters=[TopQuerySerializer],
        responses=TopPerformersSerializer,
    )
    def top_performers(self, request: Request) -> Response:
        query = parse(request, TopQuerySerializer)
        return Response(
            analytics.top_performers.rendered(query.filters(), limit=query.validated_data["limit"])
        )

    @extend_schema(
        operation_id="performance_recommendations",
        summary="Recommendations",
        description="Advice from the measured outcomes, each only from a group of at least "
        "ANALYTICS_MIN_SAMPLE checked outcomes and only where the win rate's 95 % Wilson "
        "interval supports it; `withheld` says what was not said and why.",
        parameters=[PerformanceQuerySerializer],
        responses=RecommendationsSerializer,
    )
    def recommendations(self, request: Request) -> Response:
        filters = parse(request, PerformanceQuerySerializer).filters()
        return Response(recommendations.recommendations.rendered(filters))


class TrackerViewSet(viewsets.GenericViewSet):
    """Stats: any user. Start and stop switch the tracker for everyone: CanControlTracker."""

    pagination_class = None
    filter_backends = []
    serializer_class = TrackerStatsSerializer

    def get_permissions(self) -> list:
        if self.action in ("start", "stop"):
            return [CanControlTracker()]
        return super().get_permissions()

    @extend_schema(
        operation_id="performance_tracker_stats",
        summary="Outcome tracker stats",
        description="Whether the tracker is on, open, due and overdue checks, done, unavailable "
        "by reason, and the last sweep.",
        responses=TrackerStatsSerializer,
    )
    def stats(self, request: Request) -> Response:
        return Response(tracker_stats())

    @extend_schema(
        operation_id="performance_tracker_start",
        summary="Switch the outcome tracker on",
        description="Staff only (permission tracking.control_tracker).",
        request=None,
        responses=TrackerStatsSerializer,
    )
    def start(self, request: Request) -> Response:
        tracker_set_enabled(True)
        return Response(tracker_stats())

    @extend_schema(
        operation_id="performance_tracker_stop",
        summary="Switch the outcome tracker off",
        description="Checks wait in their table while it is off; nothing is lost. Staff only "
        "(permission tracking.control_tracker).",
        request=None,
        responses=TrackerStatsSerializer,
    )
    def stop(self, request: Request) -> Response:
        tracker_set_enabled(False)
        return Response(tracker_stats())


class TrackSignalViewSet(viewsets.GenericViewSet):
    """Any user; the signal is theirs (scanner manual). Throttled by API_THROTTLE_TRACK_SIGNAL."""

    pagination_class = None
    filter_backends = []
    serializer_class = TrackSignalSerializer

    def get_throttles(self) -> list:
        return [*super().get_throttles(), TrackSignalThrottle()]

    @extend_schema(
        operation_id="performance_track_signal",
        summary="Track a signal",
        description="Records a signal of yours (scanner `manual`) at the current market time, at "
        "the market price or a given one close to it; its outcomes are then checked at 1h, 4h, "
        "24h, 7d and 30d like every other signal's. Only you see it (and staff); it counts in "
        "no statistic unless asked for with scanner=manual, and never takes a scanner's "
        "cooldown. At most one of yours per (symbol, direction) within SIGNAL_COOLDOWN_HOURS.",
        request=TrackSignalSerializer,
        responses={
            201: SignalSerializer,
            409: OpenApiResponse(
                description="A manual signal of yours of the same symbol and direction lies "
                "within the cooldown."
            ),
        },
    )
    def create(self, request: Request) -> Response:
        params = TrackSignalSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        signal = manual_signal_track(
            request.user,
            symbol=data["symbol"],
            direction=data["direction"],
            as_of=market_now(),
            price=data.get("price"),
            score=data.get("score"),
            tier=data.get("tier"),
        )
        if signal is None:
            hours = cooldown().total_seconds() / 3600
            raise Conflict(
                f"you tracked a {data['direction']} signal on {data['symbol']} within {hours:g} h "
                "of now (SIGNAL_COOLDOWN_HOURS)"
            )
        location = reverse("signal-detail", args=[signal.pk], request=request)
        return Response(
            SignalSerializer(signal).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )

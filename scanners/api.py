"""The scanners' API: scan runs and their results (the user's watchlists are
scanners/watchlist_api.py's; markets, candles and the replay clock are market/api.py's).

Views parse the request, call a service (`scanning`, `watchlists`) and
serialize the answer; the envelope, errors and pagination are core/api.py's. Who may do what
is core/permissions.py's: any user reads the market and the shared scans and scans coins
they name or their own watchlists; a scan of the whole universe is staff's
(scanners.scan_universe); another user's watchlists and their scans are 404s.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core.api import BodySerializer, Conflict
from core.permissions import SCAN_UNIVERSE, VIEW_ALL_SCANS, require, sees_everyones
from core.throttling import ScanStartThrottle
from market.replay_clock import market_now
from scanners.models import (
    RUN_SCANNERS,
    CoinFailure,
    RunStatus,
    RunTrigger,
    ScannerName,
    ScanResult,
    ScanRun,
    Watchlist,
)
from scanners.scanning import ScanRefused, UnknownSymbols, normalize_symbol, scan_start
from scanners.watchlists import watchlists_of

MAX_SCAN_SYMBOLS = 2000
# Scanner names a result can carry: the four with rules of their own and the two components.
RESULT_SCANNERS = (*RUN_SCANNERS, "whale", "volume")

# --- scans -------------------------------------------------------------------------------------


def own_watchlists(request: Request | None) -> QuerySet[Watchlist]:
    """The requesting user's watchlists (`watchlists_of`)."""
    return watchlists_of(getattr(request, "user", None))


def visible_runs(request: Request | None) -> QuerySet[ScanRun]:
    """The scan runs the requesting user may see: the shared ones (no watchlist, and started by
    the schedule, a command or staff: the universe's), their own (runs they started, runs of
    their watchlists); holders of scanners.view_scanrun see every run. Another user's run of
    their watchlist or of the coins they named is not among them (a 404)."""
    user = getattr(request, "user", None)
    if sees_everyones(user, VIEW_ALL_SCANS):
        return ScanRun.objects.all()
    if user is None or not user.is_authenticated:
        return ScanRun.objects.none()
    shared = Q(watchlist__isnull=True) & (
        Q(requested_by__isnull=True) | Q(requested_by__is_staff=True)
    )
    return ScanRun.objects.filter(shared | Q(requested_by=user) | Q(watchlist__owner=user))


class WatchlistRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ScanRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.SerializerMethodField(
        help_text="finished_at − started_at; null until the run has finished."
    )
    watchlist = serializers.SerializerMethodField(
        help_text="The watchlist scanned, when it is one of yours; null otherwise."
    )

    class Meta:
        model = ScanRun
        fields = [
            "id",
            "scanner",
            "status",
            "trigger",
            "as_of",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "coins_total",
            "coins_done",
            "coins_failed",
            "batches_total",
            "batches_done",
            "signals_recorded",
            "watchlist",
            "error",
            "progressed_at",
            "watchdog_stalls",
            "watchdog_resends",
            "watchdog_finishes",
            "watchdog_log",
        ]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration_seconds(self, run: ScanRun) -> float | None:
        duration = run.duration
        return None if duration is None else duration.total_seconds()

    @extend_schema_field(WatchlistRefSerializer(allow_null=True))
    def get_watchlist(self, run: ScanRun) -> dict | None:
        watchlist = run.watchlist
        request = self.context.get("request")
        if watchlist is None or request is None or watchlist.owner_id != request.user.pk:
            return None
        return {"id": watchlist.pk, "name": watchlist.name}


class CoinFailureSerializer(serializers.ModelSerializer):
    class Meta:
        model = CoinFailure
        fields = ["symbol", "error"]


class ScanRunDetailSerializer(ScanRunSerializer):
    symbols = serializers.ListField(
        child=serializers.CharField(), help_text="The coins scanned, in batch order."
    )
    failures = CoinFailureSerializer(many=True, help_text="The coins that could not be scanned.")

    class Meta(ScanRunSerializer.Meta):
        fields = [*ScanRunSerializer.Meta.fields, "symbols", "failures"]


class ScanResultSerializer(serializers.ModelSerializer):
    scores = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text='The scanner\'s own scores, e.g. {"accumulation": 7, "distribution": 2}.',
    )
    component = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text='The unified-score component per direction, 0–100: {"LONG": 70, "SHORT": 20}; '
        "null where not applicable.",
    )
    direction = serializers.CharField(
        allow_null=True, help_text="LONG or SHORT where the scanner's rule fired; else null."
    )
    reasons = serializers.ListField(child=serializers.CharField())
    inputs = serializers.JSONField(
        help_text='The raw inputs used; a missing one as {"missing": reason}.'
    )

    class Meta:
        model = ScanResult
        fields = [
            "id",
            "run",
            "scanner",
            "symbol",
            "as_of",
            "direction",
            "scores",
            "component",
            "completeness",
            "reasons",
            "inputs",
        ]


class ScanRunFilter(filters.FilterSet):
    scanner = filters.ChoiceFilter(choices=ScannerName.choices)
    status = filters.ChoiceFilter(choices=RunStatus.choices)
    trigger = filters.ChoiceFilter(choices=RunTrigger.choices)

    class Meta:
        model = ScanRun
        fields = ["scanner", "status", "trigger"]


class ScanResultFilter(filters.FilterSet):
    scanner = filters.ChoiceFilter(
        choices=[(name, name) for name in RESULT_SCANNERS],
        help_text="Results of this scanner (whale and volume are components of smart_money runs).",
    )
    symbol = filters.CharFilter(
        method="filter_symbol", help_text="A coin: BTC, BTCUSDT and BTC/USDT all mean BTC/USDT."
    )
    direction = filters.ChoiceFilter(
        choices=[("LONG", "LONG"), ("SHORT", "SHORT"), ("none", "none")],
        method="filter_direction",
        help_text="Where the scanner's rule fired LONG or SHORT, or `none`: it did not fire.",
    )

    class Meta:
        model = ScanResult
        fields = ["scanner", "symbol", "direction"]

    def filter_symbol(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(symbol=normalize_symbol(value))

    def filter_direction(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "none":
            return queryset.filter(direction__isnull=True)
        return queryset.filter(direction=value)


class ScanScopeSerializer(BodySerializer):
    """What a scan covers besides the coins: the scanner and the market time."""

    scanner = serializers.ChoiceField(
        choices=ScannerName.choices,
        help_text="smart_money, mss, rsi, social, or all (the four; whale and volume are "
        "computed with smart_money).",
    )
    as_of = serializers.DateTimeField(
        required=False,
        default_timezone=UTC,
        help_text="Market time to scan as of (ISO 8601; no offset means UTC). Default: now (the "
        "replay clock in a replay). Not after the current market time.",
    )

    def validate_as_of(self, as_of: datetime) -> datetime:
        now = market_now()
        if as_of > now:
            raise serializers.ValidationError(
                f"after the current market time ({now.isoformat()}): a scan cannot see the future"
            )
        return as_of


class WatchlistScanRequestSerializer(ScanScopeSerializer):
    scanner = serializers.ChoiceField(
        choices=ScannerName.choices, default=ScannerName.ALL, help_text="Default: all."
    )


class ScanRequestSerializer(ScanScopeSerializer):
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_empty=False,
        max_length=MAX_SCAN_SYMBOLS,
        help_text="Scan these coins (BTC, BTCUSDT or BTC/USDT); each needs a spot market.",
    )
    watchlist = serializers.PrimaryKeyRelatedField(
        queryset=Watchlist.objects.none(),
        required=False,
        help_text="Scan the coins of this watchlist (one of yours, by id).",
    )
    coins = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_SCAN_SYMBOLS,
        help_text="Scan the top N coins of the universe by 24h quote volume "
        "(default: SCAN_UNIVERSE_SIZE).",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["watchlist"].queryset = own_watchlists(self.context.get("request"))

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("symbols", "watchlist", "coins") if name in attrs]
        if len(given) > 1:
            message = f"give one of symbols, watchlist or coins, not {' and '.join(given)}"
            raise serializers.ValidationError({name: [message] for name in given})
        return attrs


def start_scan_or_refuse(request: Request, scanner: str, **scope: object) -> Response:
    """Start a run through `scanning.scan_start`: 202 with the run, 400 naming unknown symbols,
    409 when it is refused (an overlapping run, nothing to scan)."""
    try:
        run = scan_start(scanner, requested_by_id=request.user.pk, **scope)
    except UnknownSymbols as error:
        raise ValidationError({"symbols": [str(error)]}) from error
    except ScanRefused as error:
        raise Conflict(str(error)) from error
    body = ScanRunSerializer(run, context={"request": request}).data
    location = reverse("scanrun-detail", args=[run.pk], request=request)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


SCAN_STARTED = OpenApiResponse(
    ScanRunSerializer, description="Started (queued); follow the run at /api/scans/{id}/."
)
SCAN_REFUSED = OpenApiResponse(
    description="Refused: a run of the same scanner is still queued or running, or there is "
    "nothing to scan; `error.message` says which."
)


@extend_schema_view(
    list=extend_schema(
        summary="Scan runs",
        description="Runs newest first, with status, progress counts and duration.",
    ),
    retrieve=extend_schema(
        summary="One scan run", description="The run, its coins and the coins that failed."
    ),
    create=extend_schema(
        summary="Start a scan",
        description="Starts a run of `scanner` over one scope: `symbols`, a `watchlist` of "
        "yours, the top `coins` of the universe, or (none given) the universe of "
        "SCAN_UNIVERSE_SIZE coins. Answers 202 at once; the run proceeds in the background. "
        "The universe and its top `coins` are staff's (permission scanners.scan_universe); "
        "starts are throttled per user (API_THROTTLE_SCANS).",
        request=ScanRequestSerializer,
        responses={202: SCAN_STARTED, 409: SCAN_REFUSED},
    ),
    results=extend_schema(
        summary="Results of a scan run",
        description="One row per coin and scanner: scores, direction, the unified-score "
        "component, reasons, raw inputs and completeness.",
        responses=ScanResultSerializer(many=True),
    ),
)
class ScanRunViewSet(viewsets.GenericViewSet):
    """Runs the user may see (`visible_runs`); another user's watchlist run is a 404."""

    queryset = ScanRun.objects.none()
    serializer_class = ScanRunSerializer
    filterset_class = ScanRunFilter

    def get_throttles(self) -> list:
        if self.action == "create":
            return [*super().get_throttles(), ScanStartThrottle()]
        return super().get_throttles()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "retrieve":
            return ScanRunDetailSerializer
        if self.action == "create":
            return ScanRequestSerializer
        if self.action == "results":
            return ScanResultSerializer
        return ScanRunSerializer

    def get_queryset(self) -> QuerySet:
        if self.action == "results":
            return super().get_queryset()  # the action's own (ScanResult)
        queryset = (
            visible_runs(self.request).select_related("watchlist").order_by("-created_at", "-id")
        )
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("failures")
        return queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # The filters are those of the lists (runs; a run's results), never of finding one run.
        if self.action not in ("list", "results"):
            return queryset
        return super().filter_queryset(queryset)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Request) -> Response:
        params = self.get_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        scope = dict(params.validated_data)
        scanner = scope.pop("scanner")
        watchlist = scope.pop("watchlist", None)
        if watchlist is not None:
            scope["watchlist_id"] = watchlist.pk
        elif "symbols" not in scope:
            require(request, SCAN_UNIVERSE, "scan the whole universe or its top coins")
        return start_scan_or_refuse(request, scanner, **scope)

    @action(
        detail=True,
        methods=["get"],
        queryset=ScanResult.objects.order_by("symbol", "scanner"),
        filterset_class=ScanResultFilter,
    )
    def results(self, request: Request, pk: str | None = None) -> Response:
        run = get_object_or_404(visible_runs(request), pk=pk)
        results = self.filter_queryset(self.get_queryset().filter(run=run))
        page = self.paginate_queryset(results)
        return self.get_paginated_response(ScanResultSerializer(page, many=True).data)

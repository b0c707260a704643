"""The watchlists API, mounted at /api/watchlists/: the requesting user's own lists of coins,
their coins, their scans, latest results (and, served by the alerts app, their alerts). Owner
only: another user's watchlist is a 404, as if it did not exist (core/permissions.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import BodySerializer
from core.throttling import ScanStartThrottle
from market.replay_clock import market_now
from scanners.api import (
    MAX_SCAN_SYMBOLS,
    SCAN_REFUSED,
    SCAN_STARTED,
    ScanResultSerializer,
    WatchlistScanRequestSerializer,
    own_watchlists,
    start_scan_or_refuse,
)
from scanners.models import Watchlist
from scanners.scanning import UnknownSymbols
from scanners.watchlists import (
    WatchlistError,
    watchlist_add_coins,
    watchlist_create,
    watchlist_delete,
    watchlist_latest_results,
    watchlist_remove_coins,
    watchlist_rename,
    watchlist_replace_coins,
)


class WatchlistSerializer(serializers.ModelSerializer):
    coins = serializers.SerializerMethodField(help_text="Spot symbols (BTC/USDT), sorted.")

    class Meta:
        model = Watchlist
        fields = ["id", "name", "coins", "created_at", "updated_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_coins(self, watchlist: Watchlist) -> list[str]:
        return sorted(coin.symbol for coin in watchlist.coins.all())


COINS_HELP = "Coins as BTC, BTCUSDT or BTC/USDT; each needs a spot market of the exchange."


class WatchlistCreateSerializer(BodySerializer):
    name = serializers.CharField(max_length=100)
    coins = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=MAX_SCAN_SYMBOLS,
        help_text=COINS_HELP,
    )


class WatchlistRenameSerializer(BodySerializer):
    name = serializers.CharField(max_length=100)


class WatchlistCoinsSerializer(BodySerializer):
    coins = serializers.ListField(
        child=serializers.CharField(max_length=64),
        allow_empty=False,
        max_length=MAX_SCAN_SYMBOLS,
        help_text=COINS_HELP,
    )


class WatchlistReplaceCoinsSerializer(BodySerializer):
    coins = serializers.ListField(
        child=serializers.CharField(max_length=64),
        allow_empty=True,
        max_length=MAX_SCAN_SYMBOLS,
        help_text=f"The whole new list. {COINS_HELP}",
    )


@contextmanager
def watchlist_errors() -> Iterator[None]:
    """The watchlist services' refusals as 400s naming the field: `coins` or `name`."""
    try:
        yield
    except UnknownSymbols as error:
        raise ValidationError({"coins": [str(error)]}) from error
    except WatchlistError as error:
        raise ValidationError({"name": error.messages}) from error


@extend_schema_view(
    list=extend_schema(summary="Your watchlists"),
    retrieve=extend_schema(summary="One of your watchlists"),
    create=extend_schema(
        summary="Create a watchlist",
        description="A named list of coins. Unknown symbols are refused, all of them listed.",
        request=WatchlistCreateSerializer,
        responses={201: WatchlistSerializer},
    ),
    partial_update=extend_schema(
        summary="Rename a watchlist",
        request=WatchlistRenameSerializer,
        responses=WatchlistSerializer,
    ),
    destroy=extend_schema(summary="Delete a watchlist", responses={204: None}),
    add_coins=extend_schema(
        summary="Add coins to a watchlist",
        description="Coins already in it stay once. Unknown symbols are refused, all listed.",
        request=WatchlistCoinsSerializer,
        responses=WatchlistSerializer,
    ),
    remove_coins=extend_schema(
        summary="Remove coins from a watchlist",
        description="Coins not in the watchlist are refused, all listed.",
        request=WatchlistCoinsSerializer,
        responses=WatchlistSerializer,
    ),
    replace_coins=extend_schema(
        summary="Replace the coins of a watchlist",
        description="The watchlist holds exactly these coins afterwards (an empty list empties "
        "it). Unknown symbols are refused, all listed, and nothing changes. Owner only.",
        request=WatchlistReplaceCoinsSerializer,
        responses=WatchlistSerializer,
    ),
    scan=extend_schema(
        summary="Scan a watchlist",
        description="Starts a run of `scanner` (default all) over the watchlist's coins.",
        request=WatchlistScanRequestSerializer,
        responses={202: SCAN_STARTED, 409: SCAN_REFUSED},
    ),
)
class WatchlistViewSet(viewsets.GenericViewSet):
    """The requesting user's watchlists; another user's is a 404, as if it did not exist."""

    queryset = Watchlist.objects.none()
    serializer_class = WatchlistSerializer
    filterset_fields = ["name"]
    # PUT only for `coins` (replace the list): there is no `update`, so PUT on a watchlist is 405.
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_throttles(self) -> list:
        if self.action == "scan":
            return [*super().get_throttles(), ScanStartThrottle()]
        return super().get_throttles()

    def get_queryset(self) -> QuerySet[Watchlist]:
        return own_watchlists(self.request).prefetch_related("coins").order_by("name", "id")

    def _answer(self, watchlist: Watchlist, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=watchlist.pk)  # coins as they are now
        return Response(WatchlistSerializer(fresh).data, status=code)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WatchlistSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(WatchlistSerializer(self.get_object()).data)

    def create(self, request: Request) -> Response:
        params = WatchlistCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with watchlist_errors():
            watchlist = watchlist_create(
                owner=request.user,
                name=params.validated_data["name"],
                symbols=params.validated_data["coins"],
            )
        return self._answer(watchlist, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        params = WatchlistRenameSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with watchlist_errors():
            watchlist_rename(watchlist=watchlist, name=params.validated_data["name"])
        return self._answer(watchlist)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        watchlist_delete(watchlist=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="coins/add")
    def add_coins(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        params = WatchlistCoinsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with watchlist_errors():
            watchlist_add_coins(watchlist=watchlist, symbols=params.validated_data["coins"])
        return self._answer(watchlist)

    @action(detail=True, methods=["post"], url_path="coins/remove")
    def remove_coins(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        params = WatchlistCoinsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with watchlist_errors():
            watchlist_remove_coins(watchlist=watchlist, symbols=params.validated_data["coins"])
        return self._answer(watchlist)

    @action(detail=True, methods=["put"], url_path="coins")
    def replace_coins(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        params = WatchlistReplaceCoinsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with watchlist_errors():
            watchlist_replace_coins(watchlist=watchlist, symbols=params.validated_data["coins"])
        return self._answer(watchlist)

    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        params = WatchlistScanRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return start_scan_or_refuse(
            request,
            params.validated_data["scanner"],
            watchlist_id=watchlist.pk,
            as_of=params.validated_data.get("as_of"),
        )

    @extend_schema(
        summary="Latest results of a watchlist's coins",
        description="For each coin of the watchlist and each scanner, its latest result up to "
        "the market time now, from whichever run scanned it (a scan of this watchlist or of the "
        "universe); ordered by symbol and scanner. A coin no scanner has seen has no row. "
        "Owner only: another user's watchlist is a 404.",
        responses=ScanResultSerializer(many=True),
    )
    @scan.mapping.get
    def latest_results(self, request: Request, pk: str | None = None) -> Response:
        watchlist = self.get_object()
        results = watchlist_latest_results(watchlist=watchlist, now=market_now())
        page = self.paginate_queryset(results)
        return self.get_paginated_response(ScanResultSerializer(page, many=True).data)

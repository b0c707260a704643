"""The alerts API: the outbox's history, newest first (any user), and resending a failed alert
(staff: alerts.resend_alert, core/permissions.py)."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.models import RESENDABLE_STATES, Alert, AlertKind, AlertState, AlertTier
from alerts.services import alert_history, alert_resend, watchlist_alerts
from core.api import Conflict
from core.permissions import CanResendAlert
from scanners.api import own_watchlists
from scanners.watchlist_params import WatchlistParamFilter
from tracking.api import SinceUntilForm


class AlertFilter(filters.FilterSet):
    tier = filters.TypedChoiceFilter(
        choices=AlertTier.choices, coerce=int, help_text="1 (urgent), 2 (high) or 3 (medium)."
    )
    state = filters.ChoiceFilter(choices=AlertState.choices, help_text="Where it stands.")
    chat = filters.CharFilter(
        field_name="chat_id", help_text="Telegram chat id (console alerts have none)."
    )
    kind = filters.ChoiceFilter(choices=AlertKind.choices)
    since = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Written at or after (ISO 8601)."
    )
    until = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Written at or before (ISO 8601)."
    )
    watchlist = WatchlistParamFilter(
        field_name="signal__symbol",
        help_text="Only alerts of signals on the coins of this watchlist: one of yours, by id "
        "or by name (digests and summaries have no coin and are left out).",
    )

    class Meta:
        model = Alert
        fields = ["tier", "state", "chat", "kind", "since", "until", "watchlist"]
        form = SinceUntilForm


class AlertSerializer(serializers.ModelSerializer):
    # Plain values in the schema: choice sets on fields named "state"/"kind"/"tier" elsewhere
    # would make drf-spectacular warn about enum names.
    tier = serializers.IntegerField(help_text="1 (urgent), 2 (high) or 3 (medium).")
    kind = serializers.CharField(
        help_text="signal, digest, daily_summary, weekly_report or monthly_report."
    )
    state = serializers.CharField(
        help_text="pending, sending, sent, retrying, unconfirmed, failed, digested, suppressed."
    )
    channel = serializers.CharField(help_text="telegram, or console (no bot configured).")
    symbol = serializers.SerializerMethodField(help_text="The signal's coin; null for digests.")

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "tier",
            "signal",
            "symbol",
            "channel",
            "chat_id",
            "state",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "telegram_message_id",
            "last_error",
            "digest",
            "disable_notification",
            "text",
            "created_at",
        ]

    def get_symbol(self, alert: Alert) -> str | None:
        return alert.signal.symbol if alert.signal_id else None


@extend_schema_view(
    list=extend_schema(
        summary="Alerts",
        description="The alert outbox, newest first: every alert written for a signal (sent, "
        "waiting, folded into a digest by a cap, or suppressed because its tier is switched "
        "off), digests and summaries. `since`/`until` bound when the alert was written "
        "(market time for signal alerts and digests: the replay clock in a replay; wall time "
        "for the rest). `watchlist` (id or name, yours) keeps the alerts on its coins.",
    ),
    retrieve=extend_schema(summary="One alert"),
)
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        return alert_history()

    @extend_schema(
        summary="Send a failed alert again",
        description="A failed or unconfirmed alert goes back to pending and is sent again "
        "(an unconfirmed one may then arrive twice). 409 for any other state. Staff only "
        "(permission alerts.resend_alert).",
        request=None,
        responses={
            200: AlertSerializer,
            409: OpenApiResponse(description="The alert is not failed or unconfirmed."),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[CanResendAlert])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        if alert.state not in RESENDABLE_STATES or not alert_resend(alert):
            raise Conflict(
                f"Alert #{alert.pk} is {alert.state}: only failed or unconfirmed alerts "
                "can be sent again."
            )
        return Response(self.get_serializer(alert).data)


class WatchlistAlertFilter(AlertFilter):
    """The alert filters, less `watchlist` (the path names it)."""

    watchlist = None

    class Meta(AlertFilter.Meta):
        fields = ["tier", "state", "chat", "since", "until"]


@extend_schema_view(
    list=extend_schema(
        summary="Alerts on a watchlist's coins",
        description="The alerts of signals on the coins the watchlist holds now, newest first "
        "(filters as /api/alerts/). Owner only: another user's watchlist is a 404.",
    )
)
class WatchlistAlertViewSet(viewsets.GenericViewSet):
    """GET /api/watchlists/{id}/alerts, served by the alerts app (scanners does not depend on
    it); the watchlist is looked up among the requesting user's own."""

    serializer_class = AlertSerializer
    filterset_class = WatchlistAlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no watchlist
            return Alert.objects.none()
        watchlist = get_object_or_404(own_watchlists(self.request), pk=self.kwargs["pk"])
        return watchlist_alerts(watchlist)

    def list(self, request: Request, pk: str | None = None) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

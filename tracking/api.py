"""The signals API: what the scanners and the unified ranking said, newest first (read-only).

Any user sees every scanner's and the ranking's signals and their own manual ones; another user's
manual signal is a 404 (core/permissions.py)."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets

from scanners.scanning import normalize_symbol
from scoring.services import TIERS
from tracking.models import HORIZON_DELTAS, Direction, OutcomeCheck, Signal, SignalScanner
from tracking.services import signals_visible_to


class SinceUntilForm(forms.Form):
    """A date range whose end is not before its start; the error names `until`. Both ends are
    read in UTC: ISO 8601 allows offsets up to ±23:59, PostgreSQL only up to ±15:59."""

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in ("since", "until"):
            if cleaned.get(name) is not None:
                cleaned[name] = cleaned[name].astimezone(UTC)
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", f"must not be before since ({since.isoformat()})")
        return cleaned


class SignalFilter(filters.FilterSet):
    scanner = filters.ChoiceFilter(
        choices=SignalScanner.choices,
        help_text="The scanner that recorded it (or `unified`; `manual`: yours, tracked by hand).",
    )
    tier = filters.ChoiceFilter(
        choices=[(t, t) for t in TIERS], help_text="The coin's unified tier when it was recorded."
    )
    direction = filters.ChoiceFilter(choices=Direction.choices)
    symbol = filters.CharFilter(
        method="filter_symbol", help_text="A coin: BTC, BTCUSDT and BTC/USDT all mean BTC/USDT."
    )
    since = filters.IsoDateTimeFilter(
        field_name="as_of", lookup_expr="gte", help_text="Recorded at or after (ISO 8601, UTC)."
    )
    until = filters.IsoDateTimeFilter(
        field_name="as_of", lookup_expr="lte", help_text="Recorded at or before (ISO 8601, UTC)."
    )

    class Meta:
        model = Signal
        fields = ["scanner", "tier", "direction", "symbol", "since", "until"]
        form = SinceUntilForm

    def filter_symbol(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(symbol=normalize_symbol(value))


class SignalSerializer(serializers.ModelSerializer):
    # A plain string in the schema: a second choice set for fields named "scanner" (the runs' has
    # `all`, this one `unified`) would need an ENUM_NAME_OVERRIDES entry to be named cleanly.
    scanner = serializers.CharField(
        help_text="smart_money, mss, rsi, social, unified (the unified ranking), or manual "
        "(tracked by hand through the API: yours)."
    )
    tier = serializers.CharField(
        allow_null=True, help_text="TIER_1..TIER_4; null where no unified score was known."
    )

    class Meta:
        model = Signal
        fields = [
            "id",
            "scanner",
            "symbol",
            "direction",
            "as_of",
            "entry_price",
            "scanner_score",
            "scores",
            "unified_score",
            "tier",
            "confidence",
            "completeness",
            "reasons",
            "scan_run",
        ]

    def to_representation(self, signal: Signal) -> dict:
        data = super().to_representation(signal)
        data["tier"] = data["tier"] or None
        return data


class OutcomeCheckSerializer(serializers.ModelSerializer):
    """One horizon of a signal's outcome (docs/SCORING.md, "Outcomes"); the result fields are
    null until the check has run."""

    horizon = serializers.CharField(help_text="1h, 4h, 24h, 7d or 30d.")
    status = serializers.CharField(
        help_text="pending, claimed, done or unavailable (no price at the due time)."
    )
    outcome = serializers.CharField(
        allow_null=True, help_text="WIN, LOSS or NEUTRAL once done; null before."
    )
    first_barrier = serializers.CharField(
        allow_null=True,
        help_text="Which barrier (win or loss) the price touched first; null if none or not run.",
    )

    class Meta:
        model = OutcomeCheck
        fields = [
            "horizon",
            "due_at",
            "status",
            "attempts",
            "checked_at",
            "exit_price",
            "return_pct",
            "adjusted_return_pct",
            "outcome",
            "mfe_pct",
            "mae_pct",
            "first_barrier",
            "btc_return_pct",
            "excess_return_pct",
            "unavailable_reason",
        ]

    def to_representation(self, check: OutcomeCheck) -> dict:
        data = super().to_representation(check)
        data["outcome"] = data["outcome"] or None
        data["first_barrier"] = data["first_barrier"] or None
        return data


class SignalDetailSerializer(SignalSerializer):
    outcome_checks = serializers.SerializerMethodField(
        help_text="Its outcome checks, one per horizon in order (1h … 30d)."
    )

    class Meta(SignalSerializer.Meta):
        fields = [*SignalSerializer.Meta.fields, "outcome_checks"]

    @extend_schema_field(OutcomeCheckSerializer(many=True))
    def get_outcome_checks(self, signal: Signal) -> list[dict]:
        order = list(HORIZON_DELTAS)
        checks = sorted(
            signal.outcome_checks.all(),
            key=lambda check: order.index(check.horizon) if check.horizon in order else len(order),
        )
        return OutcomeCheckSerializer(checks, many=True).data


@extend_schema_view(
    list=extend_schema(
        summary="Signals",
        description="Recorded signals, newest first: a scanner's rule firing, or a coin entering "
        "TIER_1/TIER_2 of the unified ranking (scanner `unified`), and the signals you tracked "
        "by hand (scanner `manual`; nobody else's). `since`/`until` bound the signal's market "
        "time (as_of).",
    ),
    retrieve=extend_schema(
        summary="One signal",
        description="The signal with its outcome checks (1h, 4h, 24h, 7d, 30d): due time, "
        "status and, once run, the return, outcome, excursions and BTC comparison.",
    ),
)
class SignalViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Signal.objects.order_by("-as_of", "-id")
    serializer_class = SignalSerializer
    filterset_class = SignalFilter

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return SignalDetailSerializer if self.action == "retrieve" else SignalSerializer

    def get_queryset(self) -> QuerySet[Signal]:
        queryset = signals_visible_to(self.request.user)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("outcome_checks")
        return queryset

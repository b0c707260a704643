"""The `watchlist` parameter of every endpoint that takes one (unified ranking, performance,
alerts): one of the requesting user's watchlists, named by id or by name
(`scanners.watchlists.watchlist_find`). An unknown one, or another user's, is a 400 naming the
parameter, the same answer for both, so nobody learns which other users' watchlists exist.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from scanners.models import Watchlist
from scanners.watchlists import WatchlistNotFound, watchlist_find

WATCHLIST_PARAM_HELP = "Only the coins of this watchlist: one of yours, by id or by name."


def watchlist_param(request: Request | None, ref: object, *, param: str = "watchlist") -> Watchlist:
    """The `watchlist` query parameter or body field of every endpoint that takes one: one of the
    requesting user's watchlists by id or by name (`watchlists.watchlist_find`). An unknown one,
    or another user's, is a 400 naming the parameter (the same answer, so nobody learns which
    other users' watchlists exist)."""
    try:
        return watchlist_find(owner=getattr(request, "user", None), ref=str(ref))
    except WatchlistNotFound as error:
        raise ValidationError({param: [str(error)]}) from None


@extend_schema_field({"type": "string", "example": "majors"})
class WatchlistParamField(serializers.Field):
    """A serializer field for `watchlist`: an id or a name in, the user's Watchlist out."""

    default_error_messages = {"invalid": "expected a watchlist id or name"}

    def to_internal_value(self, data: object) -> Watchlist:
        if not isinstance(data, str | int) or isinstance(data, bool):
            self.fail("invalid")
        try:
            return watchlist_find(
                owner=getattr(self.context.get("request"), "user", None), ref=data
            )
        except WatchlistNotFound as error:
            raise ValidationError(str(error)) from None

    def to_representation(self, value: Watchlist) -> int:
        return value.pk


@extend_schema_field({"type": "string", "example": "majors"})
class WatchlistParamFilter(filters.CharFilter):
    """The `watchlist` filter of a FilterSet: keeps the rows whose `field_name` (a symbol) is a
    coin of the requesting user's watchlist, named by id or by name (`watchlist_param`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("help_text", WATCHLIST_PARAM_HELP)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if value in (None, ""):
            return qs
        watchlist = watchlist_param(getattr(self.parent, "request", None), value)
        return qs.filter(**{f"{self.field_name}__in": watchlist.coins.values("symbol")})

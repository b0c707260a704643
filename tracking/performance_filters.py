"""What the analytics aggregate: `PerformanceFilters` (the window of as_of, the horizon, the
scanner, tier, direction, symbol and watchlist; whose manual signals) and `checks`, the
checked outcomes they select (tracking/windows.py says how a window is named).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from market.replay_clock import market_now
from scanners.models import WatchlistCoin
from tracking import windows
from tracking.models import MANUAL, CheckStatus, Horizon, OutcomeCheck

HEADLINE_HORIZON = Horizon.H24.value


@dataclass(frozen=True)
class PerformanceFilters:
    """What to aggregate. `days` counts back from `now` (default: the current market time) over
    the signals' as_of; None = all signals up to now. `since`/`until` (aware datetimes; then
    `days` must be None) select as_of in [since, until], until defaulting to now
    (tracking/windows.py). `watchlist_id` keeps the signals of the
    watchlist's coins (ownership is the caller's business). Values are trusted: the API and the
    command validate them.

    Manual signals (tracked by hand) count only with scanner=manual, and then only those of
    `owner_id` when it is given (the API gives the requesting user's; the operator's command
    none: everyone's). Every other selection leaves them out."""

    days: int | None = 30
    horizon: str = HEADLINE_HORIZON
    scanner: str | None = None
    tier: str | None = None
    direction: str | None = None
    symbol: str | None = None
    watchlist_id: int | None = None
    owner_id: int | None = None
    now: datetime | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def manual(self) -> bool:
        """Manual signals asked for (scanner=manual): read from the rows, never rolled up."""
        return self.scanner == MANUAL

    def resolved(self) -> PerformanceFilters:
        """The same filters with `now` fixed, so every part of a report reads one window."""
        return self if self.now is not None else replace(self, now=market_now())

    def signal_q(self, prefix: str = "") -> Q:
        """The conditions on the signal (prefix "signal__" from an OutcomeCheck)."""
        q = self.as_of_range().q(f"{prefix}as_of")
        for name in ("scanner", "tier", "direction", "symbol"):
            value = getattr(self, name)
            if value:
                q &= Q(**{f"{prefix}{name}": value})
        if self.watchlist_id is not None:
            coins = WatchlistCoin.objects.filter(watchlist_id=self.watchlist_id).values("symbol")
            q &= Q(**{f"{prefix}symbol__in": coins})
        if not self.scanner:
            q &= ~Q(**{f"{prefix}scanner": MANUAL})
        elif self.manual and self.owner_id is not None:
            q &= Q(**{f"{prefix}owner_id": self.owner_id})
        return q

    def as_of_range(self) -> windows.Range:
        """The window's range of as_of (`now` as resolved, else the current market time)."""
        now = self.now if self.now is not None else market_now()
        return windows.report_range(now, self.days, self.since, self.until)

    def period(self) -> dict[str, Any]:
        """The window as every response states it: period_days (None with since/until), since
        and until as given (None when not), as_of = where the window ends (until, else now)."""
        return {
            "period_days": self.days,
            "since": self.since,
            "until": self.until,
            "as_of": self.until if self.until is not None else self.now,
        }

    def echo(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since,
            "until": self.until,
            "horizon": self.horizon,
            "scanner": self.scanner,
            "tier": self.tier,
            "direction": self.direction,
            "symbol": self.symbol,
            "watchlist": self.watchlist_id,
        }


def checks(filters: PerformanceFilters, *, all_horizons: bool = False) -> QuerySet[OutcomeCheck]:
    """The checked outcomes (DONE) the filters select: at their horizon, or at every one."""
    queryset = OutcomeCheck.objects.filter(filters.signal_q("signal__"), status=CheckStatus.DONE)
    if not all_horizons:
        queryset = queryset.filter(horizon=filters.horizon)
    return queryset

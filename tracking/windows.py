"""The time window of a performance report: which signals (by their `as_of`) it counts, how a
request names it (`days`, or `since` and `until`), and how the window maps onto the daily
rollups (tracking/rollups.py) read by tracking/window_aggregates.py.

A request names its window one of two ways, never both:
- `days` = N: the signals of the last N days of market time, (now − N days, now], now = the
  replay clock in a replay that has one, else the wall clock (as it always was).
- `since` and/or `until`: ISO 8601 dates or times, [since, until], both ends included (as
  GET /api/signals/ bounds as_of, and as `replay --start … --end …` steps at both ends). A time
  without an offset is UTC; a date means its midnight UTC, so `until=2024-04-01` includes a signal
  at 2024-04-01T00:00 and nothing later that day. Without `since` there is no lower bound; without
  `until` the window ends at now (included).

The API and the `performance_report` command parse and check the parameters with the same
functions here (`moment_parse`, `window_check`), so they accept and refuse the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Q

DAY = timedelta(days=1)

# What the refusals say about combining the parameters.
COMBINATIONS = "give either days, or since and/or until (not days with since or until)"


class WindowError(ValueError):
    """A bad window parameter; `parameter` names it ("since", "until" or "days")."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def moment_parse(raw: str, parameter: str) -> datetime:
    """An ISO 8601 date (its midnight UTC) or date and time (without an offset: UTC; `Z` or an
    offset: converted to UTC) as an aware UTC datetime; WindowError naming `parameter` else."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(
            parameter,
            f"{text!r} is not an ISO 8601 date or time (e.g. 2024-03-01 or 2024-03-01T12:00Z)",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def window_check(days: int | None, since: datetime | None, until: datetime | None) -> None:
    """Refuse (WindowError naming the parameter) `days` together with `since` or `until`, and a
    `since` after `until`. `days` itself is checked by the caller (a whole number ≥ 1)."""
    if days is not None and (since is not None or until is not None):
        raise WindowError("days", f"days cannot be combined with since or until: {COMBINATIONS}")
    if since is not None and until is not None and since > until:
        raise WindowError(
            "since", f"since ({since.isoformat()}) is after until ({until.isoformat()})"
        )


def show(moment: datetime) -> str:
    """A bound as the command line and the API take it back: ISO 8601 in UTC with `Z`, seconds
    always, microseconds only when there are some."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


# --- ranges of as_of ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The signals whose as_of lies between `start` (None: no lower bound) and `end`, each end
    included or not."""

    start: datetime | None
    start_included: bool
    end: datetime
    end_included: bool

    def q(self, field: str) -> Q:
        """The ORM condition on `field` (e.g. "signal__as_of")."""
        q = Q(**{f"{field}__{'lte' if self.end_included else 'lt'}": self.end})
        if self.start is not None:
            q &= Q(**{f"{field}__{'gte' if self.start_included else 'gt'}": self.start})
        return q

    def sql(self, column: str) -> tuple[str, list[datetime]]:
        """The SQL condition on `column` and its parameters (the bounds, to be adapted)."""
        parts, params = [], []
        if self.start is not None:
            parts.append(f"{column} {'>=' if self.start_included else '>'} %s")
            params.append(self.start)
        parts.append(f"{column} {'<=' if self.end_included else '<'} %s")
        params.append(self.end)
        return " AND ".join(parts), params

    def __contains__(self, moment: datetime) -> bool:
        if self.start is not None and (
            moment < self.start or (moment == self.start and not self.start_included)
        ):
            return False
        return moment < self.end or (moment == self.end and self.end_included)


def report_range(
    now: datetime, days: int | None, since: datetime | None, until: datetime | None
) -> Range:
    """The as_of range of a report: [since, until or now] when either is given, else
    (now − days, now] (no lower bound without days)."""
    if since is not None or until is not None:
        return Range(since, True, until if until is not None else now, True)
    return Range(None if days is None else now - timedelta(days=days), False, now, True)


# --- the range on the daily rollups -------------------------------------------------------------


@dataclass(frozen=True)
class RollupPlan:
    """A range as whole UTC days of rollups plus signed row ranges at its ends: the range's sums
    = the rollups of the days in [first_day, end_day) (first_day None: every day before end_day)
    + Σ sign × the sums of the rows in each edge range."""

    first_day: date | None
    end_day: date
    edges: tuple[tuple[Range, int], ...]


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def rollup_plan(window: Range, *, end_is_now: bool) -> RollupPlan | None:
    """How to read `window` from the rollups, with at most about half a day of rows at each end
    (whatever the window's length); None when the window is empty (its start after its end), which
    the rows answer at no cost.

    The start's day is either read from its rollup less its rows before the start, or from its rows
    from the start on, whichever covers fewer hours. The end's day likewise, except when the end is
    now (`end_is_now`): there it is always its rollup less the rows after now, which live are none
    (in a replay, the rows a later position of the clock recorded).
    """
    if window.start is not None and (
        window.start > window.end
        or (window.start == window.end and not (window.start_included and window.end_included))
    ):
        return None
    edges: list[tuple[Range, int]] = []
    first_day = None
    if window.start is not None:
        first = _midnight(window.start)
        if window.start - first < DAY / 2:
            if window.start > first or not window.start_included:
                # Take out the day's rows before the start (and at it, when it is excluded).
                edges.append((Range(first, True, window.start, not window.start_included), -1))
        else:
            first += DAY
            edges.append((Range(window.start, window.start_included, first, False), 1))
        first_day = first
    last = _midnight(window.end)
    after_end = (Range(window.end, not window.end_included, last + DAY, False), -1)
    # (A start in the second half of the end's day puts the end there too: never a negative day.)
    if end_is_now or window.end - last >= DAY / 2:
        end_day = last + DAY
        edges.append(after_end)
    else:
        end_day = last
        if window.end > last or window.end_included:
            edges.append((Range(last, True, window.end, window.end_included), 1))
    return RollupPlan(
        first_day=None if first_day is None else first_day.date(),
        end_day=end_day.date(),
        edges=tuple(edges),
    )

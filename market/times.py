"""Time in the market store: timeframes, epoch milliseconds, aware UTC datetimes.

All times are UTC. A candle is identified by its open time; it is *closed*, and so visible to a
point-in-time read as of T, only when `open_time + timeframe <= T`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "8h": timedelta(hours=8),
    "1d": timedelta(days=1),
}


def timeframe_duration(timeframe: str) -> timedelta:
    """The length of one candle of `timeframe`; ValueError for a timeframe we do not store."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}"
        ) from None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def datetime_to_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime, exactly."""
    return (require_aware(value) - EPOCH) // MILLISECOND


def ms_to_datetime(value: int) -> datetime:
    """The aware UTC datetime of a millisecond epoch timestamp."""
    return EPOCH + timedelta(milliseconds=int(value))


def require_aware(value: datetime, name: str = "as_of") -> datetime:
    """`value` itself; ValueError for a naive datetime, whose meaning would depend on the server."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got naive {value.isoformat()}")
    return value


def show_time(moment: datetime | None) -> str:
    """A time as reasons and log lines show it: 2024-01-01 05:00 UTC."""
    return "never" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def parse_utc(text: str) -> datetime:
    """An ISO 8601 date or time (`2024-01-01`, `2024-01-01T06:00Z`) as an aware UTC datetime; one
    that names no zone is UTC. ValueError for anything else."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2024-01-01T00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

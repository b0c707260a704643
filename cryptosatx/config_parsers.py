"""Parsers of environment values, one per kind of setting in the table (cryptosatx/config.py).

Contract: a parser takes the raw text (stripped, never empty: an empty value counts as unset and
is never parsed) and returns the typed value, or raises ValueError whose message says what was
expected, in words an operator can act on (`expected a whole number`, `must be at most 100`).
`load_config` puts the variable's name and the raw value in front of that message, so a parser
never repeats them.

These are hand-written rather than pydantic-settings: pydantic's messages are several lines
with a link and its type names (`Input should be a valid integer`), its booleans accept `t`/`y`,
and its list fields want JSON; translating that back cost more code than these parsers are.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from typing import Any

from market.times import parse_utc

Parser = Callable[[str], Any]

RATE_PERIODS = ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")


def whole_number(minimum: int | None = None, maximum: int | None = None) -> Parser:
    """An int within [minimum, maximum] (either bound optional)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("expected a whole number") from None
        _check_range(value, minimum, maximum)
        return value

    return parse


def number(minimum: float | None = None, maximum: float | None = None) -> Parser:
    """A finite float within [minimum, maximum] (either bound optional)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        _check_range(value, minimum, maximum)
        return value

    return parse


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}")


def positive_interval(raw: str) -> float:
    """A finite float greater than 0: a duration or a frequency in the setting's unit."""
    value = number()(raw)
    if value <= 0:
        raise ValueError("an interval must be greater than 0")
    return value


def boolean(raw: str) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case."""
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def choice(*options: str) -> Parser:
    """One of `options`, spelled exactly."""

    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"unknown value; expected one of: {', '.join(options)}")
        return raw

    return parse


def text(raw: str) -> str:
    """Any text, as given."""
    return raw


def comma_list(raw: str) -> list[str]:
    """Comma-separated items, each stripped; empty items dropped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def rate(raw: str) -> str:
    """A request rate as DRF's throttles read it: `<requests>/<period>`, e.g. 60/min."""
    count, _, period = raw.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ValueError("expected <requests>/<period> such as 60/min (period: s, min, hour, day)")
    return f"{int(count)}/{period}"


def time_zone(raw: str) -> str:
    """An IANA time zone name the machine knows."""
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "unknown time zone (use an IANA name such as UTC or Europe/Berlin)"
        ) from None
    return raw


def database_url(raw: str) -> str:
    """A postgres:// (or postgresql://) or sqlite:// URL."""
    if not raw.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ValueError("expected a postgres:// or sqlite:// URL")
    return raw


def broker_url(raw: str) -> str:
    """memory:// or a redis:// (rediss://) URL."""
    if not raw.startswith(("memory://", "redis://", "rediss://")):
        raise ValueError("expected memory:// or a redis:// URL")
    return raw


def http_url(raw: str) -> str:
    """An http:// or https:// URL, without a trailing slash."""
    if not raw.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return raw.rstrip("/")


def utc_datetime(raw: str) -> datetime:
    """An ISO 8601 time, as an aware UTC datetime (market.times.parse_utc)."""
    try:
        return parse_utc(raw)
    except ValueError:
        raise ValueError("expected an ISO 8601 time such as 2024-01-01T00:00Z") from None

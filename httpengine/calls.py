"""What a request returns and raises, and the clock the engine waits on."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]
# --- what a call returns and raises ------------------------------------------------------------


@dataclass(frozen=True)
class Reply(Generic[T]):
    """What one request gave: its data and the weight the server says is used.

    `finish`, when given, turns `data` (a body not read yet) into the caller's answer once the
    request's concurrency slot is given back (see `RequestEngine.run`); it raises BadResponse
    when the body is not what the API promises."""

    data: Any
    used_weight: int | None = None  # the X-MBX-USED-WEIGHT-1M the server answered, if any
    finish: Callable[[Any], T] | None = None


class RequestError(Exception):
    """Base of every failure the engine raises or understands."""


class RateLimited(RequestError):
    """HTTP 429: too many requests; wait `retry_after` seconds before the next one."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = max(float(retry_after), 0.0)
        super().__init__(message or f"rate limited (HTTP 429), retry after {self.retry_after:g} s")


class Banned(RequestError):
    """HTTP 418: the IP is banned until `until` (epoch seconds)."""

    def __init__(self, until: float, message: str | None = None) -> None:
        self.until = float(until)
        super().__init__(message or f"banned (HTTP 418) until {show_epoch(self.until)}")


class TransientError(RequestError):
    """A failure that may pass: timeout, 5xx, refused or dropped connection."""


class PermanentError(RequestError):
    """A failure a retry cannot fix: 4xx other than 418/429, unknown symbol."""


class BadResponse(PermanentError):
    """The body is not what the API promises (not JSON, wrong shape)."""


def show_epoch(moment: float) -> str:
    """Epoch seconds as log lines show them: 2024-01-01 05:00:07 UTC."""
    return f"{datetime.fromtimestamp(moment, tz=UTC):%Y-%m-%d %H:%M:%S} UTC"

"""The product's health report, handed down to the layers below the package that checks every part.

`cryptosatx` (the top) checks the database, broker, workers, beat and the replay clock; the bot's
/status (alerts) and the dashboard (web) sit below it, so cannot import it. `cryptosatx/apps.py`
provides the functions when Django starts; the layers below call `report()` / `public()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Report = dict[str, Any]

_fresh: Callable[[], Report] | None = None
_kept: Callable[[], Report] | None = None
_public: Callable[[Report], Report] | None = None


def provide(
    *, fresh: Callable[[], Report], kept: Callable[[], Report], public: Callable[[Report], Report]
) -> None:
    """`fresh`: checks every part now (rare callers that want a fresh answer: the bot's /status);
    `kept`: the answer the background prober keeps (pages: no request waits on a broker, nor on
    the process's first probe: its parts say "waiting" until it is done);
    `public`: what anyone may see of a report."""
    global _fresh, _kept, _public
    _fresh, _kept, _public = fresh, kept, public


def _require(function: Callable[..., Report] | None) -> Callable[..., Report]:
    if function is None:
        raise RuntimeError("no health report was provided (cryptosatx is not installed)")
    return function


def report_fresh() -> Report:
    return _require(_fresh)()


def report_kept() -> Report:
    return _require(_kept)()


def public(report: Report) -> Report:
    return _require(_public)(report)

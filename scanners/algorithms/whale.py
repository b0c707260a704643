"""Whale activity, a component of the unified score only (docs/SCORING.md, "Whale activity")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market.times import show_time
from market.values import LargeTrades, Maybe, Missing
from scanners.algorithms.common import (
    LONG,
    SHORT,
    ScannerConfig,
    ScannerResult,
    Tally,
    clamp,
    nothing_scored,
    number,
)

SCANNER = "whale"
SHARE_FACTOR = 200.0


@dataclass(frozen=True)
class WhaleTrades:
    """The last hour's large trades: value bought and sold in trades ≥ min_usd, of all trades."""

    buy_usd: float
    sell_usd: float
    total_usd: float
    min_usd: float
    count: int


@dataclass(frozen=True)
class WhaleInputs:
    symbol: str
    as_of: datetime
    trades: Maybe[WhaleTrades]

    @classmethod
    def build(
        cls, symbol: str, as_of: datetime, *, large_trades: Maybe[LargeTrades]
    ) -> WhaleInputs:
        if isinstance(large_trades, Missing):
            return cls(symbol, as_of, large_trades)
        if large_trades.window_end > as_of:
            raise ValueError(
                f"large trades of {symbol} end at {show_time(large_trades.window_end)}, "
                f"after as_of {show_time(as_of)}"
            )
        return cls(
            symbol,
            as_of,
            WhaleTrades(
                large_trades.buy_usd,
                large_trades.sell_usd,
                large_trades.total_usd,
                large_trades.min_usd,
                large_trades.count,
            ),
        )


def score_whale(inputs: WhaleInputs, *, config: ScannerConfig) -> ScannerResult:
    """Net whale share in each direction: LONG clamp(200 × net buy share), SHORT the sell side."""
    tally = Tally(inputs_total=1)
    trades = inputs.trades
    if not isinstance(trades, Missing) and trades.total_usd <= 0:
        trades = Missing("nothing traded in the last hour")
    if isinstance(trades, Missing):
        tally.missing("large_trades", "whale trades", trades)
        return nothing_scored(SCANNER, inputs, tally)
    tally.have(
        "large_trades",
        {
            "buy_usd": trades.buy_usd,
            "sell_usd": trades.sell_usd,
            "total_usd": trades.total_usd,
            "min_usd": trades.min_usd,
            "count": trades.count,
        },
    )
    net_buy_share = (trades.buy_usd - trades.sell_usd) / trades.total_usd
    long_score = clamp(SHARE_FACTOR * net_buy_share)
    short_score = clamp(SHARE_FACTOR * -net_buy_share)
    tally.say(
        f"{trades.count} trades ≥ ${number(trades.min_usd)} in the last hour: "
        f"${trades.buy_usd:,.0f} bought, ${trades.sell_usd:,.0f} sold "
        f"of ${trades.total_usd:,.0f} traded; net buy share {net_buy_share:+.4f} "
        f"→ LONG {long_score:.1f}, SHORT {short_score:.1f}"
    )
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"net_buy_share": net_buy_share, "whale": max(long_score, short_score)},
        direction=None,  # a component only: it never fires a signal of its own
        component={LONG: long_score, SHORT: short_score},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=tally.completeness,
    )

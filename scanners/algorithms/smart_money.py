"""Smart money: accumulation and distribution points, 0-10 each (docs/SCORING.md, "Smart money")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market.values import CandleSeries, Funding, Maybe, Missing, OpenInterestNow, Social
from scanners.algorithms.common import (
    LONG,
    SHORT,
    Direction,
    FundingPer8h,
    PointTable,
    Pressure,
    ScannerConfig,
    ScannerResult,
    Tally,
    above,
    below,
    funding_per_8h,
    number,
    pct,
    pressure_from_candles,
    price_change_pct,
)

SCANNER = "smart_money"
INPUTS = ("pressure", "funding", "social_activity", "price_change_7d", "open_interest")

# Each input: the accumulation table and the distribution table (strict inequalities).
BUY_SHARE = PointTable(
    (above(0.55, 3, "> 0.55"), above(0.52, 2, "> 0.52"), above(0.50, 1, "> 0.50"))
)
SELL_SHARE = BUY_SHARE
FUNDING_ACCUMULATION = PointTable((below(0.0, 2, "< 0 %"), below(0.0001, 1, "< 0.01 %")))
FUNDING_DISTRIBUTION = PointTable((above(0.0005, 2, "> 0.05 %"), above(0.0003, 1, "> 0.03 %")))
SOCIAL_ACCUMULATION = PointTable((below(30, 2, "< 30"), below(45, 1, "< 45")))
SOCIAL_DISTRIBUTION = PointTable((above(70, 2, "> 70"), above(55, 1, "> 55")))
SIDEWAYS_7D = PointTable((below(5, 2, "abs < 5 %"), below(10, 1, "abs < 10 %")))  # of abs(change)
PUMP_7D = PointTable((above(20, 2, "> +20 %"), above(10, 1, "> +10 %")))
OI_ACCUMULATION_CHANGE = 5.0  # OI > +5 % while abs(price change) < 2 %: 1
OI_ACCUMULATION_PRICE = 2.0
OI_DISTRIBUTION_CHANGE = 10.0  # OI > +10 % while price change > +5 %: 1
OI_DISTRIBUTION_PRICE = 5.0
MAX_POINTS = 10


@dataclass(frozen=True)
class OpenInterestChange:
    """Open interest's 24 h change and the price's 24 h change over the same day, in percent."""

    open_interest_change_pct: float
    price_change_pct: float


@dataclass(frozen=True)
class SmartMoneyInputs:
    symbol: str
    as_of: datetime
    pressure: Maybe[Pressure]
    funding: Maybe[FundingPer8h]
    social_activity: Maybe[float]  # 0-100: LunarCrush Galaxy score
    price_change_7d_pct: Maybe[float]
    open_interest: Maybe[OpenInterestChange]

    @classmethod
    def build(
        cls,
        symbol: str,
        as_of: datetime,
        *,
        candles: Maybe[CandleSeries],
        funding: Maybe[Funding],
        open_interest: Maybe[OpenInterestNow],
        social: Maybe[Social],
    ) -> SmartMoneyInputs:
        return cls(
            symbol=symbol,
            as_of=as_of,
            pressure=pressure_from_candles(candles, as_of),
            funding=funding_per_8h(funding),
            social_activity=social_activity(social),
            price_change_7d_pct=price_change_pct(candles, as_of, 168),
            open_interest=open_interest_change(open_interest, candles, as_of),
        )


def social_activity(social: Maybe[Social]) -> Maybe[float]:
    """Social activity 0-100 is LunarCrush's Galaxy score."""
    if isinstance(social, Missing):
        return social
    return social.galaxy_score


def open_interest_change(
    open_interest: Maybe[OpenInterestNow], candles: Maybe[CandleSeries], as_of: datetime
) -> Maybe[OpenInterestChange]:
    if isinstance(open_interest, Missing):
        return open_interest
    if isinstance(open_interest.change_24h_pct, Missing):
        return open_interest.change_24h_pct
    price = price_change_pct(candles, as_of, 24)
    if isinstance(price, Missing):
        return Missing(f"no 24 h price change to read open interest with: {price.reason}")
    return OpenInterestChange(open_interest.change_24h_pct, price)


def score_smart_money(inputs: SmartMoneyInputs, *, config: ScannerConfig) -> ScannerResult:
    tally = Tally(inputs_total=len(INPUTS))
    accumulation = 0.0
    distribution = 0.0

    pressure = inputs.pressure
    if isinstance(pressure, Missing):
        tally.missing("pressure", "buying pressure", pressure)
    else:
        tally.have(
            "pressure",
            {
                "buy_share": pressure.buy_share,
                "sell_share": pressure.sell_share,
                "method": pressure.method,
                "candles": pressure.candles,
            },
        )
        name = "taker buy share" if pressure.method == "taker" else "up-candle volume share"
        sell = "taker sell share" if pressure.method == "taker" else "down-candle volume share"
        tally.say(f"pressure measured as the {pressure.describe()}")
        acc = BUY_SHARE.score(pressure.buy_share)
        dist = SELL_SHARE.score(pressure.sell_share)
        accumulation += acc[0]
        distribution += dist[0]
        _points(tally, f"{name} {pressure.buy_share:.4g}", acc, "accumulation")
        _points(tally, f"{sell} {pressure.sell_share:.4g}", dist, "distribution")

    funding = inputs.funding
    if isinstance(funding, Missing):
        tally.missing("funding", "funding", funding)
    else:
        tally.have(
            "funding",
            {
                "rate_8h": funding.rate_8h,
                "rate": funding.rate,
                "interval_hours": funding.interval_hours,
                "funding_time": funding.funding_time,
            },
        )
        acc = FUNDING_ACCUMULATION.score(funding.rate_8h)
        dist = FUNDING_DISTRIBUTION.score(funding.rate_8h)
        accumulation += acc[0]
        distribution += dist[0]
        _both(tally, funding.describe(), acc, dist)

    activity = inputs.social_activity
    if isinstance(activity, Missing):
        tally.missing("social_activity", "social activity", activity)
    else:
        tally.have("social_activity", activity)
        acc = SOCIAL_ACCUMULATION.score(activity)
        dist = SOCIAL_DISTRIBUTION.score(activity)
        accumulation += acc[0]
        distribution += dist[0]
        _both(tally, f"social activity (Galaxy score) {number(activity)}", acc, dist)

    change = inputs.price_change_7d_pct
    if isinstance(change, Missing):
        tally.missing("price_change_7d_pct", "7-day price change", change)
    else:
        tally.have("price_change_7d_pct", change)
        acc = SIDEWAYS_7D.score(abs(change))
        dist = PUMP_7D.score(change)
        accumulation += acc[0]
        distribution += dist[0]
        _both(
            tally,
            f"7-day price change {pct(change)}",
            (acc[0], f"{acc[1]} (sideways)"),
            (dist[0], f"{dist[1]} (recent pump)"),
        )

    oi = inputs.open_interest
    if isinstance(oi, Missing):
        tally.missing("open_interest", "open interest", oi)
    else:
        tally.have(
            "open_interest",
            {
                "change_24h_pct": oi.open_interest_change_pct,
                "price_change_24h_pct": oi.price_change_pct,
            },
        )
        acc_hit = (
            oi.open_interest_change_pct > OI_ACCUMULATION_CHANGE
            and abs(oi.price_change_pct) < OI_ACCUMULATION_PRICE
        )
        dist_hit = (
            oi.open_interest_change_pct > OI_DISTRIBUTION_CHANGE
            and oi.price_change_pct > OI_DISTRIBUTION_PRICE
        )
        acc = (1.0, "> +5 % while abs(price) < 2 %") if acc_hit else (0.0, "")
        dist = (1.0, "> +10 % while price > +5 %") if dist_hit else (0.0, "")
        accumulation += acc[0]
        distribution += dist[0]
        _both(
            tally,
            f"open interest 24h change {pct(oi.open_interest_change_pct)} "
            f"with price {pct(oi.price_change_pct)}",
            acc,
            dist,
        )

    available = tally.available > 0
    direction: Direction = None
    long_fires = accumulation >= config.accumulation_alert_threshold
    short_fires = distribution >= config.distribution_alert_threshold
    if long_fires and (not short_fires or accumulation > distribution):
        direction = LONG
        tally.say(
            f"accumulation {number(accumulation)}/10 ≥ "
            f"{number(config.accumulation_alert_threshold)}: LONG"
        )
    elif short_fires and (not long_fires or distribution > accumulation):
        direction = SHORT
        tally.say(
            f"distribution {number(distribution)}/10 ≥ "
            f"{number(config.distribution_alert_threshold)}: SHORT"
        )
    elif available:
        tally.say(
            f"accumulation {number(accumulation)}/10, distribution {number(distribution)}/10: "
            "no signal"
        )
    else:
        tally.say("no input of smart money was available: no score")
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"accumulation": accumulation, "distribution": distribution} if available else {},
        direction=direction,
        component={
            LONG: accumulation * 10 if available else None,
            SHORT: distribution * 10 if available else None,
        },
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=tally.completeness,
    )


def _points(tally: Tally, what: str, scored: tuple[float, str], side: str) -> None:
    points, label = scored
    if points:
        tally.say(f"{what} {label}: +{number(points)} {side}")
    else:
        tally.say(f"{what}: no {side} points")


def _both(tally: Tally, what: str, acc: tuple[float, str], dist: tuple[float, str]) -> None:
    if acc[0]:
        tally.say(f"{what} {acc[1]}: +{number(acc[0])} accumulation")
    if dist[0]:
        tally.say(f"{what} {dist[1]}: +{number(dist[0])} distribution")
    if not acc[0] and not dist[0]:
        tally.say(f"{what}: no points")

"""MSS, new-listing discovery: three phases of points (docs/SCORING.md, "MSS").

`MSS = 100 × points / (maximum points of the inputs that were available)`; only coins listed less
than `MSS_MAX_AGE_HOURS` ago are scored (`score_mss` returns None for the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market.times import show_time
from market.values import (
    CandleSeries,
    Fundamentals,
    Funding,
    LongShortRatio,
    Maybe,
    Missing,
    OpenInterestNow,
    Social,
)
from scanners.algorithms.common import (
    HOUR,
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
    at_least,
    at_most,
    between,
    funding_per_8h,
    number,
    pressure_from_candles,
)

SCANNER = "mss"

# --- the point tables: ordered bands, the first match wins; `maximum` is each input's best ------

FDV_USD = PointTable(
    (
        at_most(5e6, 15, "FDV ≤ 5 M"),
        at_most(10e6, 13, "FDV ≤ 10 M"),
        at_most(25e6, 10, "FDV ≤ 25 M"),
        at_most(50e6, 6, "FDV ≤ 50 M"),
    ),
    otherwise=2,
    otherwise_label="FDV > 50 M",
)
AGE_HOURS = PointTable(
    (
        at_most(24, 12, "age ≤ 24 h"),
        at_most(48, 10, "age ≤ 48 h"),
        at_most(72, 7, "age ≤ 72 h"),
        at_most(168, 4, "age ≤ 168 h"),
    ),
    otherwise=1,
    otherwise_label="age > 168 h",
)
CIRCULATING_PCT = PointTable(
    (
        at_most(20, 8, "circulating ≤ 20 % of total supply"),
        at_most(40, 6, "circulating ≤ 40 % of total supply"),
        at_most(60, 4, "circulating ≤ 60 % of total supply"),
    ),
    otherwise=2,
    otherwise_label="circulating > 60 % of total supply",
)
ALT_RANK = PointTable(
    (
        at_most(50, 10, "AltRank ≤ 50"),
        at_most(100, 8, "AltRank ≤ 100"),
        at_most(200, 5, "AltRank ≤ 200"),
        at_most(500, 3, "AltRank ≤ 500"),
    ),
    otherwise=1,
    otherwise_label="AltRank > 500",
)
GALAXY = PointTable(
    (
        at_least(75, 8, "Galaxy score ≥ 75"),
        at_least(65, 6, "Galaxy score ≥ 65"),
        at_least(50, 4, "Galaxy score ≥ 50"),
    ),
    otherwise=1,
    otherwise_label="Galaxy score < 50",
)
SENTIMENT = PointTable(
    (
        at_least(70, 6, "sentiment ≥ 70"),
        at_least(60, 4, "sentiment ≥ 60"),
        at_least(50, 2, "sentiment ≥ 50"),
    ),
    otherwise=0,
    otherwise_label="sentiment < 50",
)
SOCIAL_VOLUME_CHANGE_PCT = PointTable(
    (
        at_least(200, 6, "24h social volume change ≥ 200 %"),
        at_least(100, 5, "24h social volume change ≥ 100 %"),
        at_least(50, 3.5, "24h social volume change ≥ 50 %"),
        at_least(25, 2, "24h social volume change ≥ 25 %"),
    ),
    otherwise=0.5,
    otherwise_label="24h social volume change < 25 %",
)
OPEN_INTEREST_CHANGE_PCT = PointTable(
    (
        at_least(200, 12, "open-interest change ≥ 200 %"),
        at_least(100, 10, "open-interest change ≥ 100 %"),
        at_least(50, 7, "open-interest change ≥ 50 %"),
        at_least(25, 4, "open-interest change ≥ 25 %"),
        at_least(0, 1, "open-interest change ≥ 0"),
    ),
    otherwise=0,
    otherwise_label="open interest fell",
)
FUNDING_8H = PointTable(  # the order matters: 0.01-0.04 % first, then above, then (0, 0.01 %)
    (
        between(0.0001, 0.0004, 8, "funding 0.01–0.04 %"),
        above(0.0004, 4, "funding > 0.04 %"),
        above(0.0, 5, "funding > 0 (below 0.01 %)"),
    ),
    otherwise=1,
    otherwise_label="funding ≤ 0",
)
LONG_SHORT = PointTable(  # the order matters: 1.5-2.5 first, then above 2.5, then the rest
    (
        between(1.5, 2.5, 10, "top-trader long/short 1.5–2.5"),
        above(2.5, 5, "top-trader long/short > 2.5"),
        at_least(1.2, 7, "top-trader long/short ≥ 1.2"),
        at_least(1.0, 4, "top-trader long/short ≥ 1.0"),
    ),
    otherwise=1,
    otherwise_label="top-trader long/short < 1.0",
)
BUY_SHARE = PointTable((above(0.55, 5, "buy share > 0.55"),), otherwise_label="buy share ≤ 0.55")

# name -> (phase, table, what the reasons call it)
TABLES: dict[str, tuple[str, PointTable, str]] = {
    "fdv_usd": ("discovery", FDV_USD, "FDV"),
    "age_hours": ("discovery", AGE_HOURS, "age since listing"),
    "circulating_pct": ("discovery", CIRCULATING_PCT, "circulating/total supply"),
    "alt_rank": ("social", ALT_RANK, "AltRank"),
    "galaxy_score": ("social", GALAXY, "Galaxy score"),
    "sentiment": ("social", SENTIMENT, "sentiment"),
    "social_volume_change_pct": ("social", SOCIAL_VOLUME_CHANGE_PCT, "24h social volume change"),
    "open_interest_change_pct": ("validation", OPEN_INTEREST_CHANGE_PCT, "open-interest change"),
    "funding": ("validation", FUNDING_8H, "funding"),
    "long_short_ratio": ("validation", LONG_SHORT, "top-trader long/short ratio"),
    "buy_share": ("validation", BUY_SHARE, "buy share"),
}
# A buy share needs this many candles since the listing (docs/SCORING.md, "MSS").
BUY_SHARE_MIN_CANDLES = 6
MAX_POINTS = sum(table.maximum for _phase, table, _label in TABLES.values())  # 100


@dataclass(frozen=True)
class MssInputs:
    symbol: str
    as_of: datetime
    listed_at: Maybe[datetime]
    fdv_usd: Maybe[float]
    circulating_pct: Maybe[float]  # circulating / total supply, in percent
    alt_rank: Maybe[float]
    galaxy_score: Maybe[float]
    sentiment: Maybe[float]  # 0-100
    social_volume_change_pct: Maybe[float]
    open_interest_change_pct: Maybe[float]
    funding: Maybe[FundingPer8h]
    long_short_ratio: Maybe[float]
    pressure: Maybe[Pressure]

    @property
    def age_hours(self) -> Maybe[float]:
        if isinstance(self.listed_at, Missing):
            return self.listed_at
        return (self.as_of - self.listed_at) / HOUR

    @classmethod
    def build(
        cls,
        symbol: str,
        as_of: datetime,
        *,
        listed_at: Maybe[datetime],
        candles: Maybe[CandleSeries],
        fundamentals: Maybe[Fundamentals],
        social: Maybe[Social],
        open_interest: Maybe[OpenInterestNow],
        funding: Maybe[Funding],
        long_short: Maybe[LongShortRatio],
    ) -> MssInputs:
        return cls(
            symbol=symbol,
            as_of=as_of,
            listed_at=listed_at,
            fdv_usd=_part(fundamentals, "fdv"),
            circulating_pct=circulating_pct(fundamentals),
            alt_rank=_part(social, "alt_rank"),
            galaxy_score=_part(social, "galaxy_score"),
            sentiment=_part(social, "sentiment"),
            social_volume_change_pct=_part(social, "social_volume_change_24h_pct"),
            open_interest_change_pct=_part(open_interest, "change_24h_pct"),
            funding=funding_per_8h(funding),
            long_short_ratio=_part(long_short, "ratio"),
            pressure=pressure_from_candles(candles, as_of, min_candles=BUY_SHARE_MIN_CANDLES),
        )


def _part(value: object, name: str) -> Maybe[float]:
    return value if isinstance(value, Missing) else getattr(value, name)


def circulating_pct(fundamentals: Maybe[Fundamentals]) -> Maybe[float]:
    if isinstance(fundamentals, Missing):
        return fundamentals
    circulating, total = fundamentals.circulating_supply, fundamentals.total_supply
    if isinstance(circulating, Missing):
        return circulating
    if isinstance(total, Missing):
        return total
    if total <= 0:
        return Missing("total supply is not positive")
    return circulating / total * 100


def is_new_listing(listed_at: Maybe[datetime], as_of: datetime, config: ScannerConfig) -> bool:
    """Listed less than MSS_MAX_AGE_HOURS before as_of (an unknown listing time is not new)."""
    if isinstance(listed_at, Missing):
        return False
    return 0 <= (as_of - listed_at) / HOUR < config.mss_max_age_hours


def score_mss(inputs: MssInputs, *, config: ScannerConfig) -> ScannerResult | None:
    """The MSS of a new listing; None for a coin listed MSS_MAX_AGE_HOURS ago or earlier."""
    if not is_new_listing(inputs.listed_at, inputs.as_of, config):
        return None
    values: dict[str, Maybe[float]] = {
        "fdv_usd": inputs.fdv_usd,
        "age_hours": inputs.age_hours,
        "circulating_pct": inputs.circulating_pct,
        "alt_rank": inputs.alt_rank,
        "galaxy_score": inputs.galaxy_score,
        "sentiment": inputs.sentiment,
        "social_volume_change_pct": inputs.social_volume_change_pct,
        "open_interest_change_pct": inputs.open_interest_change_pct,
        "funding": _part(inputs.funding, "rate_8h"),
        "long_short_ratio": inputs.long_short_ratio,
        "buy_share": _part(inputs.pressure, "buy_share"),
    }
    tally = Tally(inputs_total=len(TABLES))
    points = 0.0
    possible = 0.0
    phases = {"discovery": 0.0, "social": 0.0, "validation": 0.0}
    for name, (phase, table, label) in TABLES.items():
        value = values[name]
        if isinstance(value, Missing):
            tally.missing(name, label, value)
            continue
        tally.have(name, value)
        got, band = table.score(value)
        points += got
        possible += table.maximum
        phases[phase] += got
        tally.say(
            f"{label} {_show(name, value, inputs)} ({band}): "
            f"+{number(got)} of {number(table.maximum)} {phase} points"
        )
    if not isinstance(inputs.funding, Missing):
        tally.inputs["funding_detail"] = {
            "rate": inputs.funding.rate,
            "interval_hours": inputs.funding.interval_hours,
        }
    if not isinstance(inputs.pressure, Missing):
        tally.inputs["buy_share_method"] = inputs.pressure.method
    tally.inputs["listed_at"] = inputs.listed_at.isoformat()  # a new listing: known

    mss = 100.0 * points / possible  # age is always available here, so possible > 0
    completeness = tally.completeness
    tally.say(
        f"MSS {mss:.1f} = 100 × {number(points)} points / {number(possible)} possible "
        f"from the inputs available ({tally.available} of {len(TABLES)})"
    )
    direction: Direction = None
    if mss >= config.mss_alert_threshold:
        if completeness < config.mss_min_completeness:
            tally.say(
                f"MSS {mss:.1f} ≥ {number(config.mss_alert_threshold)} but completeness "
                f"{completeness:.2f} < {number(config.mss_min_completeness)}: no signal"
            )
        else:
            direction = LONG
            tally.say(f"MSS {mss:.1f} ≥ {number(config.mss_alert_threshold)}: LONG")
    else:
        tally.say(f"MSS {mss:.1f} < {number(config.mss_alert_threshold)}: no signal")
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"mss": mss, "points": points, "possible": possible, **phases},
        direction=direction,
        component={LONG: mss, SHORT: None},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=completeness,
    )


def _show(name: str, value: float, inputs: MssInputs) -> str:
    if name == "fdv_usd":
        return f"${value / 1e6:,.2f} M"
    if name == "age_hours":
        return f"{value:.1f} h (listed {show_time(inputs.listed_at)})"
    if name in ("circulating_pct", "social_volume_change_pct", "open_interest_change_pct"):
        return f"{value:.2f} %"
    if name == "funding":
        assert isinstance(inputs.funding, FundingPer8h)
        return inputs.funding.describe().removeprefix("funding ")
    if name == "buy_share":
        assert isinstance(inputs.pressure, Pressure)
        return f"{value:.4g} ({inputs.pressure.describe()})"
    return number(value)

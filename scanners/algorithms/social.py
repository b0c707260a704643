"""Social trending: LunarCrush's metrics, or CoinGecko's trending rank (docs/SCORING.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from market.values import CandleSeries, Maybe, Missing, Social, TrendingCoin
from scanners.algorithms.common import (
    LONG,
    SHORT,
    Direction,
    ScannerConfig,
    ScannerResult,
    Tally,
    clamp,
    nothing_scored,
    number,
    pct,
    price_change_pct,
)

SCANNER = "social"
GALAXY_WEIGHT = 0.5
ALT_RANK_WEIGHT = 0.3
ALT_RANK_CAP = 1000
VOLUME_WEIGHT = 0.2


@dataclass(frozen=True)
class LunarCrushMetrics:
    galaxy_score: Maybe[float]
    alt_rank: Maybe[float]
    social_volume_change_pct: Maybe[float]


@dataclass(frozen=True)
class SocialInputs:
    symbol: str
    as_of: datetime
    lunarcrush: Maybe[LunarCrushMetrics]  # Missing without a LunarCrush key
    trending_rank: Maybe[int]  # CoinGecko trending rank, 1 = most trending
    price_change_24h_pct: Maybe[float]

    @classmethod
    def build(
        cls,
        symbol: str,
        as_of: datetime,
        *,
        social: Maybe[Social],
        trending: Maybe[list[TrendingCoin]],
        candles: Maybe[CandleSeries],
    ) -> SocialInputs:
        metrics: Maybe[LunarCrushMetrics] = (
            social
            if isinstance(social, Missing)
            else LunarCrushMetrics(
                social.galaxy_score, social.alt_rank, social.social_volume_change_24h_pct
            )
        )
        return cls(
            symbol=symbol,
            as_of=as_of,
            lunarcrush=metrics,
            trending_rank=trending_rank(symbol, trending),
            price_change_24h_pct=price_change_pct(candles, as_of, 24),
        )


def trending_rank(symbol: str, trending: Maybe[list[TrendingCoin]]) -> Maybe[int]:
    if isinstance(trending, Missing):
        return trending
    base = symbol.partition("/")[0].upper()
    for coin in trending:
        if coin.base.upper() == base:
            return coin.rank
    return Missing(f"{base} is not among the {len(trending)} trending coins")


def _uses_lunarcrush(metrics: Maybe[LunarCrushMetrics]) -> bool:
    return not isinstance(metrics, Missing) and any(
        not isinstance(part, Missing)
        for part in (metrics.galaxy_score, metrics.alt_rank, metrics.social_volume_change_pct)
    )


def score_social(inputs: SocialInputs, *, config: ScannerConfig) -> ScannerResult:
    """The social score 0-100; LONG when it reaches the threshold with a positive 24h change."""
    metrics = inputs.lunarcrush
    score: float | None = None
    if _uses_lunarcrush(metrics):
        assert isinstance(metrics, LunarCrushMetrics)
        tally = Tally(inputs_total=4)
        tally.inputs["method"] = "lunarcrush"
        score = 0.0
        galaxy = metrics.galaxy_score
        if isinstance(galaxy, Missing):
            tally.missing("galaxy_score", "Galaxy score", galaxy)
        else:
            tally.have("galaxy_score", galaxy)
            part = GALAXY_WEIGHT * galaxy
            score += part
            tally.say(f"Galaxy score {number(galaxy)}: 0.5 × {number(galaxy)} = +{part:.2f}")
        rank = metrics.alt_rank
        if isinstance(rank, Missing):
            tally.missing("alt_rank", "AltRank", rank)
        else:
            tally.have("alt_rank", rank)
            part = ALT_RANK_WEIGHT * 100 * (1 - min(rank, ALT_RANK_CAP) / ALT_RANK_CAP)
            score += part
            tally.say(
                f"AltRank {number(rank)}: 0.3 × 100 × (1 − min({number(rank)}, 1000)/1000) "
                f"= +{part:.2f}"
            )
        change = metrics.social_volume_change_pct
        if isinstance(change, Missing):
            tally.missing("social_volume_change_pct", "24h social volume change", change)
        else:
            tally.have("social_volume_change_pct", change)
            part = VOLUME_WEIGHT * min(100.0, change / 2)
            score += part
            tally.say(
                f"24h social volume change {pct(change)}: 0.2 × min(100, {number(change)}/2) "
                f"= {part:+.2f}"
            )
        if not 0 <= score <= 100:
            tally.say(f"the sum {score:.2f} is limited to 0..100")
            score = clamp(score)
    else:
        tally = Tally(inputs_total=2)
        tally.inputs["method"] = "trending"
        if isinstance(metrics, Missing):
            tally.missing("lunarcrush", "LunarCrush metrics", metrics)
        else:
            tally.say("LunarCrush gave no Galaxy score, AltRank or social volume change")
        rank = inputs.trending_rank
        if isinstance(rank, Missing):
            tally.missing("trending_rank", "CoinGecko trending rank", rank)
        else:
            tally.have("trending_rank", rank)
            score = clamp(100.0 - 5.0 * (rank - 1))
            tally.say(f"CoinGecko trending rank {rank}: 100 − 5 × ({rank} − 1) = {score:g}")

    change_24h = inputs.price_change_24h_pct
    if score is None:
        tally.inputs["price_change_24h_pct"] = (
            change_24h if not isinstance(change_24h, Missing) else {"missing": change_24h.reason}
        )
        tally.say("no LunarCrush metrics and not trending: no social score")
        return nothing_scored(SCANNER, inputs, tally)

    if isinstance(change_24h, Missing):
        tally.missing("price_change_24h_pct", "24h price change", change_24h)
    else:
        tally.have("price_change_24h_pct", change_24h)
    direction: Direction = None
    threshold = config.social_alert_threshold
    if score < threshold:
        tally.say(f"social score {score:.1f} < {number(threshold)}: no signal")
    elif isinstance(change_24h, Missing):
        tally.say(
            f"social score {score:.1f} ≥ {number(threshold)} but no 24h price change: no signal"
        )
    elif change_24h > 0:
        direction = LONG
        tally.say(
            f"social score {score:.1f} ≥ {number(threshold)} with 24h price change "
            f"{pct(change_24h)}: LONG"
        )
    else:
        tally.say(
            f"social score {score:.1f} ≥ {number(threshold)} but 24h price change "
            f"{pct(change_24h)} is not positive: no signal"
        )
    return ScannerResult(
        scanner=SCANNER,
        symbol=inputs.symbol,
        as_of=inputs.as_of,
        scores={"social": score},
        direction=direction,
        component={LONG: score, SHORT: None},
        reasons=tally.reasons,
        inputs=tally.inputs,
        completeness=tally.completeness,
    )

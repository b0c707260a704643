"""The unified ranking: updated for the coins of a scan run, read as the latest row per symbol.

After a run, each of its coins is scored again from the latest `ScanResult` of every scanner for
that coin (as of the run's as_of, whichever run wrote it) with `scoring.services.unified_score`,
and stored as one `UnifiedRanking` row per (run, coin). The row also says whether the coin
*entered* TIER_1/TIER_2 with it (`should_record_unified_signal` against the coin's previous row),
so recording unified signals never depends on when it runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from scanners.models import ScanResult, ScanRun
from scoring.config import ScoringConfig
from scoring.models import UnifiedRanking
from scoring.services import should_record_unified_signal, unified_score

_CHUNK = 500


def latest_results(symbols: Sequence[str], *, as_of) -> dict[str, list[ScanResult]]:
    """Per symbol, the latest ScanResult of each scanner at or before as_of."""
    by_symbol: dict[str, list[ScanResult]] = defaultdict(list)
    for chunk in _chunks(symbols):
        rows = (
            ScanResult.objects.filter(symbol__in=chunk, as_of__lte=as_of)
            .annotate(
                position=Window(
                    RowNumber(),
                    partition_by=[F("symbol"), F("scanner")],
                    order_by=[F("as_of").desc(), F("id").desc()],
                )
            )
            .filter(position=1)
            .defer("inputs")
        )
        for row in rows:
            by_symbol[row.symbol].append(row)
    return by_symbol


def previous_rankings(symbols: Sequence[str], *, run: ScanRun) -> dict[str, UnifiedRanking]:
    """Per symbol, its latest ranking row before this run's (at or before the run's as_of)."""
    previous: dict[str, UnifiedRanking] = {}
    for chunk in _chunks(symbols):
        rows = (
            UnifiedRanking.objects.filter(symbol__in=chunk, as_of__lte=run.as_of)
            .exclude(scan_run=run)
            .annotate(
                position=Window(
                    RowNumber(),
                    partition_by=[F("symbol")],
                    order_by=[F("as_of").desc(), F("id").desc()],
                )
            )
            .filter(position=1)
            .only("id", "symbol", "tier", "direction")
        )
        previous.update({row.symbol: row for row in rows})
    return previous


def ranking_update_for_run(
    run: ScanRun, *, config: ScoringConfig | None = None
) -> list[UnifiedRanking]:
    """Score the run's scanned coins again and store their rows; idempotent (rows unique on
    (run, symbol): a second call writes nothing and returns the same rows)."""
    config = config or ScoringConfig.from_settings()
    symbols = sorted(set(ScanResult.objects.filter(run=run).values_list("symbol", flat=True)))
    already = set(UnifiedRanking.objects.filter(scan_run=run).values_list("symbol", flat=True))
    symbols = [symbol for symbol in symbols if symbol not in already]
    results = latest_results(symbols, as_of=run.as_of)
    previous = previous_rankings(symbols, run=run)
    rows = []
    for symbol in symbols:
        scored = unified_score(results.get(symbol, []), config=config, as_of=run.as_of)
        if scored is None:
            continue
        before = previous.get(symbol)
        rows.append(
            UnifiedRanking(
                scan_run=run,
                symbol=symbol,
                as_of=run.as_of,
                direction=scored.direction,
                unified_score=scored.unified_score,
                score_long=scored.scores.get("LONG"),
                score_short=scored.scores.get("SHORT"),
                tier=scored.tier,
                score_tier=scored.score_tier,
                confirmations=scored.confirmations,
                confirmed_by=list(scored.confirmed_by),
                confidence=scored.confidence,
                recommendation=scored.recommendation,
                completeness=scored.completeness,
                breakdown=scored.breakdown,
                reasons=list(scored.reasons),
                notes=list(scored.notes),
                enters_signal_tier=should_record_unified_signal(
                    before.tier if before else None,
                    scored.tier,
                    previous_direction=before.direction if before else None,
                    new_direction=scored.direction,
                ),
            )
        )
    UnifiedRanking.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return list(UnifiedRanking.objects.filter(scan_run=run).order_by("symbol"))


def ranking_latest(filters: dict[str, Any] | None = None) -> QuerySet[UnifiedRanking]:
    """The ranking: each symbol's latest row, best first, then filtered.

    filters (all optional): `tier` (a tier or a list of tiers), `direction` (LONG/SHORT),
    `min_score` (unified score at least), `min_confidence`, `symbols` (a list) or `symbol`,
    `as_of` (the ranking as it stood then: rows at or before it).
    """
    filters = dict(filters or {})
    latest = UnifiedRanking.objects.all()
    if filters.get("as_of") is not None:
        latest = latest.filter(as_of__lte=filters["as_of"])
    if filters.get("symbol"):
        latest = latest.filter(symbol=filters["symbol"])
    if filters.get("symbols"):
        latest = latest.filter(symbol__in=list(filters["symbols"]))
    latest_ids = (
        latest.annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("symbol")],
                order_by=[F("as_of").desc(), F("id").desc()],
            )
        )
        .filter(position=1)
        .values_list("id", flat=True)
    )
    ranking = UnifiedRanking.objects.filter(id__in=latest_ids)
    tier = filters.get("tier")
    if tier:
        ranking = ranking.filter(tier__in=[tier] if isinstance(tier, str) else list(tier))
    if filters.get("direction"):
        ranking = ranking.filter(direction=filters["direction"])
    if filters.get("min_score") is not None:
        ranking = ranking.filter(unified_score__gte=float(filters["min_score"]))
    if filters.get("min_confidence") is not None:
        ranking = ranking.filter(confidence__gte=int(filters["min_confidence"]))
    return ranking.order_by("-unified_score", "symbol")


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk

"""The unified ranking: one row per coin and hour, recomputed by every run of that hour.

docs/SCORING.md, "One ranking per coin and hour". A run's final step (`ranking_update_for_run`)
takes the hour's lock, then recomputes the row of each of its coins for the run's hour H (as_of
floored) and upserts it:

- the row's as_of T is the latest as_of among the coin's results in H (the hour's latest scan of
  it), and the row is `unified_score` at T of the results with as_of ≤ T (`ranking_compute`);
- every run's results are committed by its batches before its final step starts, and the final
  steps of one hour run one after another (`pg_advisory_xact_lock` on H; SQLite serialises writes
  anyway), each reading after it holds the lock. So the last of them reads every result of the
  hour and writes the row a recomputation from scratch gives, whatever order they finish in.

The row also says whether the coin *entered* TIER_1/TIER_2 with it (against its previous row, the
latest of the hours before within the longest freshness window). The unified signals of an hour
are decided once its rows are final: by the final step that finds no other run of the hour still
to rank (`RankedRun` marks those that have). Until then the rows wait (`signal_decided` False),
and an hour whose last run never ranked (it was lost) is decided by a later run's final step
within `SIGNAL_DECISION_LOOKBACK`.

The replay's in-process path writes all of an hour's batches first and then ranks the hour's runs
together (`ranking_update_for_runs`, by the same recomputation): the rows the hour's last final
step writes, computed once instead of once per run.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import DateTimeField, Q, QuerySet
from django.utils import timezone

from core import read_cache
from core.row_writer import db_datetime, db_datetimes, insert_rows, json_text
from scanners.models import RunStatus, ScanResult, ScanRun
from scanners.scanning import scanner_interval
from scoring.config import ScoringConfig
from scoring.models import RankedRun, UnifiedRanking
from scoring.services import should_record_unified_signal, unified_score

HOUR = timedelta(hours=1)
# Results are read this many times their freshness window back, so that the breakdown can name a
# stale component with its age; older ones are not read at all (the lookup stays bounded).
STALE_LOOKBACK_FACTOR = 2
# An hour whose unified signals were never decided (its last run was lost) is decided by a later
# run's final step within this time of it; later than that, a signal would be news of a day ago.
SIGNAL_DECISION_LOOKBACK = timedelta(hours=24)
# Namespace of the advisory locks (the first key of pg_advisory_xact_lock(int, int)); the second
# key is the hour, in hours since the epoch.
_LOCK_NAMESPACE = 0x52414E4B  # "RANK"

_RANKING_FIELDS = (
    "scan_run",
    "as_of",
    "direction",
    "unified_score",
    "score_long",
    "score_short",
    "tier",
    "score_tier",
    "confirmations",
    "confirmed_by",
    "confidence",
    "recommendation",
    "completeness",
    "breakdown",
    "reasons",
    "notes",
    "enters_signal_tier",
    "signal_decided",
)


def coin_hour(as_of: datetime) -> datetime:
    """The hour a scan as of `as_of` ranks its coins in: as_of floored to the hour."""
    return as_of.replace(minute=0, second=0, microsecond=0)


# Fields of a run's rows (`RankingUpdate.rows`) its scanner signals never read: deferred.
_UNREAD_BY_SIGNALS = ("breakdown", "reasons", "notes", "confirmed_by")


@dataclass(frozen=True)
class RankingUpdate:
    """What a run's final step did: its coins' rows, and the rows whose signal is now due."""

    # The run's coins' rows as stored: as just written once the hour is final, else read back
    # with `_UNREAD_BY_SIGNALS` deferred (read on access).
    rows: list[UnifiedRanking]
    due: list[UnifiedRanking]  # rows entering TIER_1/TIER_2 whose hour is final and undecided
    hour: datetime | None = None  # the run's hour
    hour_final: bool = False  # no other run of the hour is still to rank: its rows are final


@dataclass(frozen=True, slots=True)
class StoredResult:
    """What the unified score reads of a stored ScanResult (`ScannerResultLike`), read without a
    model instance: `inputs` only for MSS rows (their listing time decides whether they count),
    else empty."""

    pk: int
    symbol: str
    scanner: str
    as_of: datetime
    direction: str | None
    component: dict[str, Any]
    inputs: dict[str, Any]


def latest_results(
    symbols: Sequence[str], *, as_of: datetime, config: ScoringConfig | None = None
) -> dict[str, list[StoredResult]]:
    """Per symbol, the latest ScanResult of each scanner at or before as_of, among those at most
    `STALE_LOOKBACK_FACTOR` × its freshness window old (older ones could not count anyway), in
    (scanner, as_of, pk) order.

    Bounded: one probe of the `scanresult_latest` index (symbol, scanner, as_of, id) per symbol
    and scanner, never a coin's whole history; the rows come back with the probes, in one
    statement, read as values. MSS rows keep their inputs (the listing time decides whether they
    count); the others are read without them.
    """
    config = config or ScoringConfig.from_settings()
    windows = {
        name: timedelta(hours=STALE_LOOKBACK_FACTOR * config.max_age_hours(name))
        for name in config.weights
    }
    rows = _newest_rows(
        ScanResult._meta.db_table,
        [
            KeyColumns(
                (("symbol", "=", "text"),), [(symbol,) for symbol in dict.fromkeys(symbols)]
            ),
            KeyColumns(
                (("scanner", "=", "text"), ("as_of", ">=", "timestamptz")),
                [(name, as_of - window) for name, window in windows.items()],
            ),
            KeyColumns((("as_of", "<=", "timestamptz"),), [(as_of,)]),
        ],
        "as_of DESC, id DESC",
        _RESULT_COLUMNS,
    )
    datetime_from_db = _datetime_from_db()
    # A JSON column read through the cursor, decoded as the ORM decodes it (both backends hand
    # the cursor JSON text: Django's PostgreSQL backend loads jsonb as text).
    json_from_db = ScanResult._meta.get_field("component").from_db_value
    by_symbol: dict[str, list[StoredResult]] = defaultdict(list)
    for pk, symbol, scanner, when, direction, component, inputs in rows:
        by_symbol[symbol].append(
            StoredResult(
                pk,
                symbol,
                scanner,
                datetime_from_db(when),
                direction,
                json_from_db(component, None, connection),
                {} if inputs is None else json_from_db(inputs, None, connection),
            )
        )
    for found in by_symbol.values():
        found.sort(key=lambda row: (row.scanner, row.as_of, row.pk))
    return by_symbol


# What `latest_results` reads of a result: `StoredResult`'s fields; `inputs` of MSS rows only.
_RESULT_COLUMNS = (
    "id",
    "symbol",
    "scanner",
    "as_of",
    "direction",
    "component",
    "CASE WHEN scanner = 'mss' THEN inputs END",
)


def _datetime_from_db() -> Callable[[Any], Any]:
    """A datetime column read through the cursor, as the ORM gives it: PostgreSQL's driver
    returns it aware already; SQLite's UTC text (or naive datetime) goes through the backend's
    own converter, once per distinct value (an hour's results share a few as_of)."""
    if connection.vendor != "sqlite":
        return lambda value: value
    convert = connection.ops.convert_datetimefield_value
    return functools.lru_cache(maxsize=None)(lambda value: convert(value, None, connection))


class PreviousRow(NamedTuple):
    """What a coin's new row reads of its previous one: did it already stand in a signal tier,
    which way."""

    tier: str
    direction: str


def previous_rankings(
    symbols: Sequence[str], *, hour: datetime, config: ScoringConfig | None = None
) -> dict[str, PreviousRow]:
    """Per symbol, its latest row of the hours before `hour`, within the longest freshness
    window (an older row ranked the coin from results that no longer count: no previous row).
    Read as plain values (a ranking reads one per coin every hour)."""
    config = config or ScoringConfig.from_settings()
    since = hour - timedelta(hours=math.ceil(config.longest_max_age_hours))
    rows = _newest_rows(
        UnifiedRanking._meta.db_table,
        [
            KeyColumns(
                (("symbol", "=", "text"),), [(symbol,) for symbol in dict.fromkeys(symbols)]
            ),
            KeyColumns(
                (("hour", "<", "timestamptz"), ("hour", ">=", "timestamptz")), [(hour, since)]
            ),
        ],
        "hour DESC",
        ("symbol", "tier", "direction"),
    )
    return {symbol: PreviousRow(tier, direction) for symbol, tier, direction in rows}


def _param(value: Any) -> Any:
    """A raw query's parameter as the ORM would write it (SQLite stores datetimes as UTC text)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


# SQLite allows 500 terms in one compound SELECT.
_UNION_TERMS = 400


class KeyColumns(NamedTuple):
    """Some of the columns that pick a row in `_newest_rows`, and the values they take:
    `conditions` are (column, operator, PostgreSQL type) each, compared with each of `values`
    (tuples in the order of `conditions`)."""

    conditions: Sequence[tuple[str, str, str]]
    values: Sequence[tuple[Any, ...]]


def _newest_ids(table: str, keys: Sequence[KeyColumns], order: str) -> list[int]:
    """`_newest_rows` giving each row's id alone."""
    return [row[0] for row in _newest_rows(table, keys, order, ("id",))]


def _newest_rows(
    table: str, keys: Sequence[KeyColumns], order: str, columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """For every key, the `columns` (SQL expressions over `table`'s columns) of the first row of
    `table` in `order` among those meeting the key's conditions; keys without such a row give
    nothing; in no particular order. `table` has an `id` primary key. The keys are every
    combination of one value of each of `keys` (a coin's symbol with each scanner's window,
    say), so each value goes to the database once. Values come as the cursor gives them (no
    field conversions: the caller converts what it needs).

    Each key is one walk down an index to its newest row, so the cost is per key, not per row
    the keys ever had (a window function over the keys' rows reads every one of them). On
    PostgreSQL the values go as one array per column into a LATERAL join of their unnested
    combinations, one small plan (the keys' combinations as arrays cost ~3 ms more an hour to
    adapt and plan); on SQLite, which has no LATERAL, the ids as `_UNION_TERMS` keys a statement
    of `ORDER BY … LIMIT 1` terms joined by UNION ALL (PostgreSQL would plan each of hundreds of
    terms on every call: ~100 ms), then the rows' columns by id."""
    named = ", ".join(f"{column} AS c{index}" for index, column in enumerate(columns))
    outer = ", ".join(f"newest.c{index}" for index in range(len(columns)))
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sources, where, params = [], [], []
            for number, (conditions, values) in enumerate(keys):
                names = [f"k{index}" for index in range(len(conditions))]
                arrays = ", ".join(f"%s::{kind}[]" for _column, _operator, kind in conditions)
                sources.append(f"unnest({arrays}) AS keys{number}({', '.join(names)})")
                for index, (column, operator, _kind) in enumerate(conditions):
                    where.append(f"{column} {operator} keys{number}.{names[index]}")
                    params.append([value[index] for value in values])
            cursor.execute(
                f"SELECT {outer} FROM {' CROSS JOIN '.join(sources)} CROSS JOIN LATERAL "  # noqa: S608 - our SQL, values are params
                f"(SELECT {named} FROM {table} WHERE {' AND '.join(where)} "
                f"ORDER BY {order} LIMIT 1) AS newest",
                params,
            )
            return cursor.fetchall()
        conditions = [condition for group in keys for condition in group.conditions]
        where = " AND ".join(f"{column} {operator} %s" for column, operator, _kind in conditions)
        newest = f"SELECT id FROM {table} WHERE {where} ORDER BY {order} LIMIT 1"  # noqa: S608 - our SQL, values are params
        one = f"SELECT id FROM ({newest}) AS newest"  # noqa: S608 - our SQL, values are params
        combinations = list(itertools.product(*(group.values for group in keys)))
        # The keys repeat a few values (as_of, its windows) hundreds of times: adapted once each.
        adapted: dict[Any, Any] = {}
        ids: list[int] = []
        for start in range(0, len(combinations), _UNION_TERMS):
            terms = combinations[start : start + _UNION_TERMS]
            params = []
            for combination in terms:
                for part in combination:
                    for value in part:
                        if value not in adapted:
                            adapted[value] = _param(value)
                        params.append(adapted[value])
            cursor.execute(" UNION ALL ".join([one] * len(terms)), params)
            ids += [row[0] for row in cursor.fetchall()]
        if tuple(columns) == ("id",):
            return [(pk,) for pk in ids]
        # The columns by id afterwards: carried through every term, they cost SQLite twice as
        # much as this second read.
        for start in range(0, len(ids), _UNION_TERMS):
            chunk = ids[start : start + _UNION_TERMS]
            cursor.execute(
                f"SELECT {named} FROM {table} WHERE id IN ({', '.join(['%s'] * len(chunk))})",  # noqa: S608 - our SQL, values are params
                chunk,
            )
            rows += cursor.fetchall()
    return rows


def ranking_compute(
    symbols: Sequence[str],
    *,
    hour: datetime,
    config: ScoringConfig | None = None,
    scans: Iterable[tuple[str, datetime, int]] | None = None,
) -> list[UnifiedRanking]:
    """The rows (unsaved) of `symbols` in `hour` from the results stored now: each at the coin's
    latest scan T in that hour, from the results with as_of ≤ T. A coin without a result in the
    hour, or with nothing to score, has no row. The same function recomputes a row from scratch.
    `scans`: (symbol, as_of, run id) of results that include all of the hour's, when the caller
    read them (else read here; results outside the hour are passed over).
    """
    config = config or ScoringConfig.from_settings()
    hour = coin_hour(hour)
    if scans is None:
        # The hour's results of every coin, by the `scanresult_as_of` index, and the coins
        # picked here: bounded by one hour's scans (asking by coin walks each coin's history).
        scans = ScanResult.objects.filter(as_of__gte=hour, as_of__lt=hour + HOUR).values_list(
            "symbol", "as_of", "run_id"
        )
    wanted = set(symbols)
    end = hour + HOUR
    latest_scan: dict[str, tuple[datetime, int]] = {}
    for symbol, as_of, run_id in scans:
        if (
            symbol in wanted
            and hour <= as_of < end
            and (symbol not in latest_scan or (as_of, run_id) > latest_scan[symbol])
        ):
            latest_scan[symbol] = (as_of, run_id)
    if not latest_scan:
        return []
    ranked = sorted(latest_scan)
    results = latest_results(
        ranked, as_of=max(as_of for as_of, _run in latest_scan.values()), config=config
    )
    previous = previous_rankings(ranked, hour=hour, config=config)
    rows = []
    for symbol in ranked:
        as_of, run_id = latest_scan[symbol]
        scored = unified_score(results.get(symbol, []), config=config, as_of=as_of)
        if scored is None:
            continue
        before = previous.get(symbol)
        rows.append(
            UnifiedRanking(
                scan_run_id=run_id,
                symbol=symbol,
                hour=hour,
                as_of=as_of,
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
                signal_decided=False,
            )
        )
    return rows


def ranking_update_for_run(run: ScanRun, *, config: ScoringConfig | None = None) -> RankingUpdate:
    """Recompute and store the rows of the run's coins in its hour, and say which unified signals
    are due; idempotent (a second call rewrites the same rows).

    Runs in one transaction holding the hour's lock, taken before anything is read. A recomputed
    row whose entry was already decided keeps it decided when it still enters in the same
    direction (the cooldown would refuse a second signal anyway).
    """
    return ranking_update_for_runs([run], config=config)


def ranking_update_for_runs(
    runs: Sequence[ScanRun], *, config: ScoringConfig | None = None
) -> RankingUpdate:
    """`ranking_update_for_run` for several runs of one hour whose batches are all written: the
    rows of all their coins recomputed once, every run marked ranked, and the hour final when no
    run besides them is still to rank. The replay's in-process path ranks an hour this way once
    its scans are written: the rows are those the hour's last final step writes when each run
    ranks on its own (each row is recomputed from every result of the hour), computed once
    instead of once per run. ValueError for no runs or runs of different hours."""
    if not runs:
        raise ValueError("ranking_update_for_runs needs at least one run")
    config = config or ScoringConfig.from_settings()
    hour = coin_hour(runs[0].as_of)
    if any(coin_hour(run.as_of) != hour for run in runs):
        raise ValueError("ranking_update_for_runs ranks the runs of one hour only")
    run_ids = {run.pk for run in runs}
    with transaction.atomic():
        _lock_hour(hour)
        # Marked first: on SQLite this write takes the database's write lock before anything is
        # read, which serialises the final steps as the advisory lock does on PostgreSQL.
        RankedRun.objects.bulk_create(
            [RankedRun(run=run, hour=hour) for run in runs], ignore_conflicts=True
        )
        # The runs' coins and every coin's scans in the hour, in one read (`ranking_compute`
        # reads the hour's results the same way).
        scans = list(
            ScanResult.objects.filter(
                Q(as_of__gte=hour, as_of__lt=hour + HOUR) | Q(run__in=runs)
            ).values_list("symbol", "as_of", "run_id")
        )
        symbols = sorted({symbol for symbol, _as_of, run_id in scans if run_id in run_ids})
        rows = ranking_compute(symbols, hour=hour, config=config, scans=scans)
        entering = [row.symbol for row in rows if row.enters_signal_tier]
        # Only an entering row keeps a decided entry: none entering, nothing to ask.
        decided = (
            {
                (symbol, direction)
                for symbol, direction in UnifiedRanking.objects.filter(
                    symbol__in=entering,
                    hour=hour,
                    enters_signal_tier=True,
                    signal_decided=True,
                ).values_list("symbol", "direction")
            }
            if entering
            else set()
        )
        for row in rows:
            row.signal_decided = row.enters_signal_tier and (row.symbol, row.direction) in decided
        ranking_upsert(rows)
        # The upsert sends no signal: every process's cached rankings are stale from here.
        read_cache.bump(read_cache.RANKING)
        still_to_rank = _HoursStillToRank(besides=runs)
        due = _due_for_signals(hour, still_to_rank)
        hour_final = not still_to_rank(hour)
    if hour_final:
        # No final step of the hour comes after this one: the rows just written stay as they
        # are, so they are handed on as written (with the rows of the runs' coins that scored
        # nothing now, if an earlier step of the hour stored one). A row of a run created
        # later in the hour is recomputed by that run's own final step, which refreshes the
        # hour's signals itself.
        computed = {row.symbol for row in rows}
        unscored = [symbol for symbol in symbols if symbol not in computed]
        stored = sorted(
            [*rows, *(_stored_rows(unscored, hour) if unscored else [])],
            key=lambda row: row.symbol,
        )
    else:
        # A later final step of the hour may have rewritten them since: read as stored.
        stored = _stored_rows(symbols, hour)
    return RankingUpdate(rows=stored, due=due, hour=hour, hour_final=hour_final)


def _stored_rows(symbols: Sequence[str], hour: datetime) -> list[UnifiedRanking]:
    """What a run's signals read of their coins' rows (score, tier, confidence), as stored: the
    rows' large JSON fields are left unread (loaded on access)."""
    return list(
        UnifiedRanking.objects.filter(symbol__in=symbols, hour=hour)
        .defer(*_UNREAD_BY_SIGNALS)
        .order_by("symbol")
    )


# The columns `ranking_upsert` writes: the key, the recomputed fields, the timestamps.
_UPSERT_COLUMNS = (
    "symbol",
    "hour",
    *(f"{name}_id" if name == "scan_run" else name for name in _RANKING_FIELDS),
    "created_at",
    "updated_at",
)
_JSON_FIELDS = frozenset({"confirmed_by", "breakdown", "reasons", "notes"})


def ranking_upsert(rows: Sequence[UnifiedRanking]) -> None:
    """Store `rows` (unsaved) as the rows of their (symbol, hour): inserted, or the stored row's
    recomputed fields (`_RANKING_FIELDS`) and `updated_at` replaced, its `created_at` kept. What
    `bulk_create(update_conflicts=True)` writes, without converting every field of every row."""
    now = db_datetime(timezone.now())
    stamp = db_datetimes()
    columns = _UPSERT_COLUMNS[:-2]
    read = attrgetter(*columns)
    json_at = [index for index, column in enumerate(columns) if column in _JSON_FIELDS]
    datetime_at = [
        index
        for index, column in enumerate(columns)
        if isinstance(UnifiedRanking._meta.get_field(column), DateTimeField)
    ]
    values = []
    for row in rows:
        value = list(read(row))
        for index in json_at:
            value[index] = json_text(value[index], default=_not_json)
        for index in datetime_at:
            value[index] = stamp(value[index])
        values.append((*value, now, now))
    insert_rows(
        UnifiedRanking,
        _UPSERT_COLUMNS,
        values,
        unique_fields=("symbol", "hour"),
        update_fields=(*_RANKING_FIELDS, "updated_at"),
    )


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def ranking_mark_decided(rows: Iterable[UnifiedRanking]) -> int:
    """Mark rows' unified signals decided (after recording them or finding them refused)."""
    return UnifiedRanking.objects.filter(pk__in=[row.pk for row in rows]).update(
        signal_decided=True
    )


def runs_still_to_rank(hour: datetime, *, besides: Sequence[ScanRun] = ()) -> QuerySet[ScanRun]:
    """Runs of `hour` (as_of in it) that are queued or running, have not ranked yet and are not
    stale (created longer than their scanner's interval ago: `scan_start` fails those), other
    than the runs `besides` (those ranking now)."""
    return ScanRun.objects.filter(pk__in=_alive_still_to_rank(hour, besides=besides))


def _alive_still_to_rank(hour: datetime, *, besides: Sequence[ScanRun]) -> list[int]:
    """The ids of `runs_still_to_rank(hour, besides=besides)`, read once."""
    pending = ScanRun.objects.filter(
        as_of__gte=hour,
        as_of__lt=hour + HOUR,
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        ranked__isnull=True,
    )
    if besides:
        pending = pending.exclude(pk__in=[run.pk for run in besides])
    now = timezone.now()
    return [
        run.pk
        for run in pending.only("pk", "scanner", "created_at")
        if now - run.created_at <= scanner_interval(run.scanner)
    ]


def ranking_latest(filters: dict[str, Any] | None = None) -> QuerySet[UnifiedRanking]:
    """The ranking: each symbol's latest row (newest as_of, then highest id), best first, then
    filtered. The latest rows' ids are read when this is called.

    filters (all optional): `tier` (a tier or a list of tiers), `direction` (LONG/SHORT),
    `min_score` (unified score at least), `min_confidence`, `symbols` (a list) or `symbol`,
    `as_of` (the ranking as it stood then: rows at or before it).

    Bounded by the coins, not their history: the ranked symbols come from a skip scan of the
    (symbol, as_of) index, and each symbol's latest row from one walk down it (`_newest_ids`),
    where a window function over every row the symbols ever had grew with each hour ranked.
    """
    filters = dict(filters or {})
    if filters.get("symbols"):
        symbols = list(dict.fromkeys(filters["symbols"]))
    elif filters.get("symbol"):
        symbols = [filters["symbol"]]
    else:
        symbols = _ranked_symbols()
    as_of = filters.get("as_of")
    keys = [KeyColumns((("symbol", "=", "text"),), [(symbol,) for symbol in symbols])]
    if as_of is not None:
        keys.append(KeyColumns((("as_of", "<=", "timestamptz"),), [(as_of,)]))
    latest_ids = _newest_ids(UnifiedRanking._meta.db_table, keys, "as_of DESC, id DESC")
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


def _ranked_symbols() -> list[str]:
    """Every symbol that has a ranking row, in order: a recursive skip scan of the (symbol,
    as_of) index, one probe per symbol (SELECT DISTINCT would read every row)."""
    table = UnifiedRanking._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE ranked(symbol) AS ("  # noqa: S608 - our SQL, no values
            f" SELECT MIN(symbol) FROM {table}"
            f" UNION ALL SELECT (SELECT MIN(symbol) FROM {table} WHERE symbol > ranked.symbol)"
            f" FROM ranked WHERE ranked.symbol IS NOT NULL"
            f") SELECT symbol FROM ranked WHERE symbol IS NOT NULL"
        )
        return [row[0] for row in cursor.fetchall()]


# --- internals --------------------------------------------------------------------------------


class _HoursStillToRank:
    """Whether an hour has runs still to rank besides `besides` (`runs_still_to_rank`), each
    hour asked once: a final step asks of its own hour and of the hours its due rows are of."""

    def __init__(self, *, besides: Sequence[ScanRun]) -> None:
        self.besides = besides
        self.answers: dict[datetime, bool] = {}

    def __call__(self, hour: datetime) -> bool:
        if hour not in self.answers:
            self.answers[hour] = bool(_alive_still_to_rank(hour, besides=self.besides))
        return self.answers[hour]


def _due_for_signals(hour: datetime, still_to_rank: _HoursStillToRank) -> list[UnifiedRanking]:
    """Undecided entering rows of `hour` and of earlier hours within SIGNAL_DECISION_LOOKBACK,
    each only once no other run of its hour is still to rank; by hour, then symbol."""
    undecided = UnifiedRanking.objects.filter(
        enters_signal_tier=True,
        signal_decided=False,
        hour__gte=hour - SIGNAL_DECISION_LOOKBACK,
        hour__lte=hour,
    ).order_by("hour", "symbol")
    return [row for row in undecided if not still_to_rank(row.hour)]


def _lock_hour(hour: datetime) -> None:
    """Serialise the final steps of one hour until this transaction ends (PostgreSQL; on SQLite
    the caller's first write takes the database's write lock, which serialises them)."""
    if connection.vendor != "postgresql":
        return
    hours_since_epoch = int(hour.timestamp() // 3600)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, hours_since_epoch])

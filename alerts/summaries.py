"""The daily summary and the weekly and monthly performance reports (docs/ALERTS.md, "Summaries").

A summary covers one *period* of local calendar days in TIME_ZONE: a day, a Monday-to-Sunday week
or a calendar month. Its window is the one the analytics use — `as_of` in (start, end], end = the
local midnight after the period, start = end − N days (wall-clock arithmetic in TIME_ZONE, so a
DST change does not shift it) — so every count here and the performance numbers cover exactly the
same signals. `PerformanceFilters(days=N, now=end)` is the analytics' own call: the per-tier
numbers are `performance_by("tier", ...)` and the overall line `performance_summary(...)`,
unchanged, so the summary equals the analytics report for the same period by construction.

Days are MARKET days: "yesterday" is the local calendar day before the one `market_now()` falls
in. Outside a replay that is the wall clock; in a replay it is the replay clock, and the summaries
are sent when market time passes DAILY_SUMMARY_HOUR (`replay_summaries_due`, run on every tick of
the replay clock) instead of by beat's crontab.

What a summary holds: coins scanned (distinct coins in the period's scan results), scans run (per
scanner), signals recorded (per unified tier and per scanner), alerts per alert tier, the top
accumulation and distribution scores (smart money), new gems (MSS LONG results of coins listed
less than GEM_MAX_AGE_HOURS before the scan), the alerts that were not sent one by one (SUPPRESSED:
TIER 3 by default, or a tier switched off or muted), and the performance per tier from the
outcome tracker (n, win rate and its 95 % Wilson interval, the analytics' judgement, "too few to
judge" below ANALYTICS_MIN_SAMPLE).

Delivery: one Alert row per (kind, channel, chat, period) — the `unique_period_alert` constraint —
sent by the normal outbox. A beat tick or a task run twice finds the row and sends nothing more.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from alerts.models import Alert, AlertKind, AlertState, AlertTier
from alerts.rendering import (
    MAX_MESSAGE_CHARS,
    SIGNAL_TYPES,
    TIER_MARKS,
    _fit,
    e,
    number,
    own_value,
    signal_url,
)
from alerts.services import alert_destination, send_soon
from market.models import Market
from market.replay_clock import get_clock, market_now
from scanners.models import ScanResult, ScanRun
from tracking.analytics import performance_by, performance_summary
from tracking.metrics import TOO_FEW
from tracking.models import MANUAL, Signal
from tracking.performance_filters import PerformanceFilters

logger = logging.getLogger(__name__)

GEM_MAX_AGE_HOURS = 72.0
TOP_SCORES = 5  # lines of top accumulation / distribution
MAX_GEMS = 10
MAX_HELD_BACK = 20  # suppressed alerts listed one by one; the rest counted

KINDS = (AlertKind.DAILY_SUMMARY, AlertKind.WEEKLY_REPORT, AlertKind.MONTHLY_REPORT)
TITLES = {
    AlertKind.DAILY_SUMMARY: "📊 Daily summary",
    AlertKind.WEEKLY_REPORT: "📈 Weekly report",
    AlertKind.MONTHLY_REPORT: "🗓 Monthly report",
}


# --- periods ------------------------------------------------------------------------------------


def local_zone() -> ZoneInfo:
    return ZoneInfo(str(settings.TIME_ZONE))


def local_midnight(day: date) -> datetime:
    """00:00 of `day` in TIME_ZONE (aware, in that zone)."""
    return datetime.combine(day, time(0), tzinfo=local_zone())


@dataclass(frozen=True)
class Period:
    """Local calendar days [first_day, first_day + days) in TIME_ZONE, read as the analytics read
    a window: `as_of` in (start, end]."""

    kind: str
    first_day: date
    days: int

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @property
    def end(self) -> datetime:
        return local_midnight(self.first_day + timedelta(days=self.days))

    @property
    def start(self) -> datetime:
        # Wall-clock arithmetic in the local zone: the same as the analytics' `now - days`.
        return self.end - timedelta(days=self.days)

    @property
    def send_at(self) -> datetime:
        """When it is due: DAILY_SUMMARY_HOUR on the day after the period (local time)."""
        return self.end + timedelta(hours=int(settings.DAILY_SUMMARY_HOUR))

    def filters(self) -> PerformanceFilters:
        """The analytics filters of exactly this period (headline horizon)."""
        return PerformanceFilters(days=self.days, now=self.end)

    def q(self, prefix: str = "") -> Q:
        return Q(**{f"{prefix}as_of__gt": self.start, f"{prefix}as_of__lte": self.end})

    def previous(self) -> Period:
        return period_containing(self.kind, self.first_day - timedelta(days=1))


def period_containing(kind: str, day: date) -> Period:
    """The day, the Monday-to-Sunday week or the calendar month that contains `day`."""
    if kind == AlertKind.DAILY_SUMMARY:
        return Period(kind, day, 1)
    if kind == AlertKind.WEEKLY_REPORT:
        return Period(kind, day - timedelta(days=day.weekday()), 7)
    if kind == AlertKind.MONTHLY_REPORT:
        return Period(kind, day.replace(day=1), calendar.monthrange(day.year, day.month)[1])
    raise ValueError(f"not a summary kind: {kind!r}")


def market_today(now: datetime | None = None) -> date:
    """The local calendar day (TIME_ZONE) the market time falls in."""
    return (now or market_now()).astimezone(local_zone()).date()


def last_complete_period(kind: str, now: datetime | None = None) -> Period:
    """Yesterday, last week or last month, by market time."""
    return period_containing(kind, market_today(now)).previous()


def due_period(kind: str, now: datetime | None = None) -> Period:
    """The latest period whose send time (DAILY_SUMMARY_HOUR the day after it) has passed."""
    now = now or market_now()
    period = last_complete_period(kind, now)
    return period if period.send_at <= now else period.previous()


# --- data ---------------------------------------------------------------------------------------


def _listed_at(result: dict[str, Any], markets: dict[str, datetime]) -> datetime | None:
    raw = (result.get("inputs") or {}).get("listed_at")
    if isinstance(raw, str):
        try:
            listed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            listed = None
        if listed is not None and listed.tzinfo is not None:
            return listed
    return markets.get(result["symbol"])


def _gems(period: Period) -> list[dict[str, Any]]:
    """MSS LONG results of the period whose coin was listed < GEM_MAX_AGE_HOURS before the scan;
    per coin its best MSS. An unknown listing time is not a gem."""
    rows = list(
        ScanResult.objects.filter(period.q(), scanner="mss", direction="LONG").values(
            "symbol", "as_of", "scores", "inputs"
        )
    )
    symbols = {row["symbol"] for row in rows}
    markets: dict[str, datetime] = {}
    for symbol, listed in (
        Market.objects.filter(symbol__in=symbols, listed_at__isnull=False)
        .order_by("listed_at")
        .values_list("symbol", "listed_at")
    ):
        markets.setdefault(symbol, listed)
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        listed = _listed_at(row, markets)
        if listed is None:
            continue
        age_hours = (row["as_of"] - listed).total_seconds() / 3600
        if not 0 <= age_hours < GEM_MAX_AGE_HOURS:
            continue
        mss = (row["scores"] or {}).get("mss")
        mss = float(mss) if isinstance(mss, int | float) and not isinstance(mss, bool) else None
        gem = {"symbol": row["symbol"], "mss": mss, "age_hours": round(age_hours, 1)}
        kept = best.get(row["symbol"])
        if kept is None or (mss or 0) > (kept["mss"] or 0):
            best[row["symbol"]] = gem
    ranked = sorted(best.values(), key=lambda gem: (-(gem["mss"] or 0), gem["symbol"]))
    return ranked[:MAX_GEMS]


def _top_scores(period: Period, name: str) -> list[dict[str, Any]]:
    """Per coin, its highest smart-money `name` score in the period; best TOP_SCORES."""
    best: dict[str, float] = {}
    rows = ScanResult.objects.filter(period.q(), scanner="smart_money").values_list(
        "symbol", "scores"
    )
    for symbol, scores in rows:
        value = (scores or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            best[symbol] = max(float(value), best.get(symbol, float("-inf")))
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:TOP_SCORES]
    return [{"symbol": symbol, "score": score} for symbol, score in ranked]


def _counts(queryset, field: str) -> dict[str, int]:
    rows = queryset.values(field).annotate(count=Count("id")).order_by(field)
    return {str(row[field] or "none"): row["count"] for row in rows}


def summary_data(period: Period) -> dict[str, Any]:
    """Everything a summary or report says, as plain values (the text is rendered from it)."""
    channel, chat_id = alert_destination()
    runs = ScanRun.objects.filter(period.q())
    # A signal tracked by hand is its owner's: no summary that everyone sees counts it.
    signals = Signal.objects.filter(period.q()).exclude(scanner=MANUAL)
    alerts = Alert.objects.filter(
        period.q("signal__"), kind=AlertKind.SIGNAL, channel=channel, chat_id=chat_id
    )
    held_back = [
        {
            "alert_id": alert.pk,
            "tier": alert.tier,
            "signal_id": alert.signal_id,
            "symbol": alert.signal.symbol,
            "direction": alert.signal.direction,
            "scanner": alert.signal.scanner,
            "score": alert.signal.scanner_score,
            "value": own_value(alert.signal),  # what its scanner measured, as the alert shows
            "as_of": alert.signal.as_of,
        }
        for alert in alerts.filter(state=AlertState.SUPPRESSED)
        .select_related("signal")
        .order_by("tier", "signal__as_of", "pk")
    ]
    filters = period.filters()
    return {
        "kind": period.kind,
        "first_day": period.first_day,
        "last_day": period.last_day,
        "days": period.days,
        "start": period.start,
        "end": period.end,
        "time_zone": str(settings.TIME_ZONE),
        "coins_scanned": ScanResult.objects.filter(period.q("run__"))
        .values("symbol")
        .distinct()
        .count(),
        "scans_run": runs.count(),
        "scans_by_scanner": _counts(runs, "scanner"),
        "scans_by_status": _counts(runs, "status"),
        "signals": signals.count(),
        "signals_by_tier": _counts(signals, "tier"),
        "signals_by_scanner": _counts(signals, "scanner"),
        "alerts_by_tier": {
            int(row["tier"]): row["count"]
            for row in alerts.values("tier").annotate(count=Count("id")).order_by("tier")
        },
        "top_accumulation": _top_scores(period, "accumulation"),
        "top_distribution": _top_scores(period, "distribution"),
        "new_gems": _gems(period),
        "held_back": held_back,
        "performance": {
            "overall": performance_summary(filters),
            "by_tier": performance_by("tier", filters)["groups"],
        },
    }


def daily_summary_data(day: date) -> dict[str, Any]:
    return summary_data(period_containing(AlertKind.DAILY_SUMMARY, day))


def weekly_report_data(day: date) -> dict[str, Any]:
    """The Monday-to-Sunday week containing `day`."""
    return summary_data(period_containing(AlertKind.WEEKLY_REPORT, day))


def monthly_report_data(day: date) -> dict[str, Any]:
    """The calendar month containing `day`."""
    return summary_data(period_containing(AlertKind.MONTHLY_REPORT, day))


# --- text ---------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def performance_line(label: str, numbers: dict[str, Any]) -> str:
    """`label: win 60.0 % (95 % CI 38.7–78.1 %, n = 20) · too few to judge` (escaped)."""
    n = numbers["n"]
    if not n:
        return f"{e(label)}: no checked outcomes yet"
    interval = numbers["win_rate_ci"]
    judged = numbers["judgement"]
    return (
        f"{e(label)}: win {e(percent(numbers['win_rate']))} "
        f"(95 % CI {interval['low']:.1f}–{interval['high']:.1f} %, n = {n}) · "
        + (f"<i>{e(judged)}</i>" if judged == TOO_FEW else f"<b>{e(judged)}</b>")
    )


def _period_title(data: dict[str, Any]) -> str:
    first, last = data["first_day"], data["last_day"]
    if data["kind"] == AlertKind.DAILY_SUMMARY:
        return f"{first:%a %d %b %Y}"
    if data["kind"] == AlertKind.WEEKLY_REPORT:
        return f"week {first:%G-W%V} ({first:%d %b} – {last:%d %b %Y})"
    return f"{first:%B %Y}"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{e(name)} {count}" for name, count in counts.items()) or "none"


def summary_text(data: dict[str, Any]) -> str:
    """The summary in Telegram HTML, under 4096 characters (long lists are cut first)."""
    title = TITLES.get(data["kind"], "Summary")
    head = [
        f"<b>{e(title)} · {e(_period_title(data))}</b>",
        f"<i>market days, {e(data['time_zone'])}</i>",
        "",
        f"Coins scanned: <b>{data['coins_scanned']}</b> · scans run: <b>{data['scans_run']}</b>"
        + (f" ({_counts_text(data['scans_by_scanner'])})" if data["scans_run"] else ""),
        f"Signals: <b>{data['signals']}</b>"
        + (f" (by tier: {_counts_text(data['signals_by_tier'])})" if data["signals"] else ""),
        "Alerts: "
        + " · ".join(
            f"{TIER_MARKS[tier]} TIER {int(tier)}: {data['alerts_by_tier'].get(int(tier), 0)}"
            for tier in AlertTier
        ),
    ]
    blocks: list[list[str]] = [head]

    overall = data["performance"]["overall"]
    performance = [
        "",
        f"<b>Performance</b> (signals of the period, {e(overall['horizon'])} outcome)",
        performance_line("All", overall)
        + (f" · {overall['outcomes_pending']} pending" if overall["outcomes_pending"] else ""),
    ]
    performance += [
        performance_line(group["group"] or "no tier", group)
        for group in data["performance"]["by_tier"]
    ]
    blocks.append(performance)

    for key, label in (
        ("top_accumulation", "Top accumulation"),
        ("top_distribution", "Top distribution"),
    ):
        rows = data[key]
        if rows:
            blocks.append(
                ["", f"<b>{label}</b>"]
                + [f"• {e(row['symbol'])} {e(number(row['score']))}/10" for row in rows]
            )
    if data["new_gems"]:
        blocks.append(
            ["", f"<b>💎 New gems</b> (MSS LONG, listed &lt; {number(GEM_MAX_AGE_HOURS, 0)} h)"]
            + [
                f"• {e(gem['symbol'])} MSS {e(number(gem['mss']))}/100 · "
                f"listed {e(number(gem['age_hours']))} h before"
                for gem in data["new_gems"]
            ]
        )
    held = data["held_back"]
    if held:
        lines = [
            f'{TIER_MARKS.get(row["tier"], "")} <a href="{e(signal_url(row["signal_id"]))}">'
            f"{e(row['symbol'])}</a> {e(row['direction'])} · "
            f"{e(SIGNAL_TYPES.get(row['scanner'], row['scanner']))} {e(row['value'])}"
            for row in held[:MAX_HELD_BACK]
        ]
        if len(held) > MAX_HELD_BACK:
            lines.append(f"… and {len(held) - MAX_HELD_BACK} more (see Alerts in the admin)")
        blocks.append(["", "<b>Not sent one by one</b> (TIER 3, or tier off/muted)", *lines])
    blocks.append([])
    return _fit(blocks, MAX_MESSAGE_CHARS).rstrip()


def daily_summary_text(data: dict[str, Any]) -> str:
    return summary_text(data)


def weekly_report_text(data: dict[str, Any]) -> str:
    return summary_text(data)


def monthly_report_text(data: dict[str, Any]) -> str:
    return summary_text(data)


# --- sending ------------------------------------------------------------------------------------


def scanned_by(period: Period) -> bool:
    """Whether the product had scanned by the period's end: a period that ends before the first
    scan run (by market time) has nothing to report, so it gets no summary at all."""
    return ScanRun.objects.filter(as_of__lte=period.end).exists()


def summary_send(period: Period) -> tuple[Alert | None, bool]:
    """The period's summary in the outbox for the alert destination: (row, created). Once per
    (kind, channel, chat, period): a second call returns the existing row and queues nothing.
    (None, False) for a period that ends before the first scan (`scanned_by`)."""
    channel, chat_id = alert_destination()
    key = {"kind": period.kind, "channel": channel, "chat_id": chat_id, "period": period.first_day}
    existing = Alert.objects.filter(**key).first()
    if existing is not None:
        return existing, False
    if not scanned_by(period):
        logger.info("no %s for %s: it ends before the first scan", period.kind, period.first_day)
        return None, False
    text = summary_text(summary_data(period))
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                **key, tier=AlertTier.TIER_3, text=text, disable_notification=False
            )
            send_soon()
    except IntegrityError:  # another worker wrote it meanwhile
        return Alert.objects.get(**key), False
    logger.info("%s for %s queued as alert #%s", period.kind, period.first_day, alert.pk)
    return alert, True


def summary_send_due(kind: str, *, now: datetime | None = None) -> tuple[Alert | None, bool]:
    """Beat's crontab: the last complete period (yesterday / last week / last month)."""
    return summary_send(last_complete_period(kind, now))


def replay_summaries_due() -> list[Alert]:
    """In a replay, on each tick: every kind whose send time (DAILY_SUMMARY_HOUR market time, the
    day after the period) has passed since the replay started, not yet written. A tick that
    jumps over several days writes only the latest period of each kind."""
    if settings.MARKET_SOURCE != "replay":
        return []
    clock = get_clock()
    if clock is None:
        return []
    created: list[Alert] = []
    for kind in KINDS:
        period = due_period(kind, clock.market_time)
        if period.send_at <= clock.start:
            continue  # due before the replay began: its data was never scanned
        alert, new = summary_send(period)
        if new and alert is not None:
            created.append(alert)
    return created

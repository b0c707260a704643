"""python manage.py performance_report [--days N | --since ISO --until ISO] [--horizon H] [--json]:
the performance report of GET /api/performance/report, as text or (--json) as exactly the API's
`data`. The window is the API's: `--days` (default 7) counts back from now (the replay clock in a
replay), `--since`/`--until` bound the signals' as_of, both ends included (tracking/windows.py).
Who may run it: whoever runs manage.py (the operator); it only reads."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.utils.encoders import JSONEncoder

from tracking import analytics, performance_filters, windows
from tracking.models import Horizon

DEFAULT_DAYS = 7  # as GET /api/performance/report


def _positive_days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise CommandError(f"--days must be a whole number of at least 1, not {raw!r}")
    return days


def _moment(raw: str | None, name: str) -> Any:
    if raw is None:
        return None
    try:
        return windows.moment_parse(raw, name)
    except windows.WindowError as error:
        raise CommandError(f"--{name}: {error.message}") from None


def _period(summary: dict[str, Any]) -> str:
    """The window in words: the last N days to as_of, or since/until as given."""
    if summary["period_days"] is not None or (
        summary["since"] is None and summary["until"] is None
    ):
        return f"the last {summary['period_days']} days to {summary['as_of']:%Y-%m-%d %H:%M} UTC"
    since = "the start" if summary["since"] is None else windows.show(summary["since"])
    if summary["until"] is None:
        return f"{since} to now ({summary['as_of']:%Y-%m-%d %H:%M} UTC), both included"
    return f"{since} to {windows.show(summary['until'])}, both included"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _interval(row: dict[str, Any], name: str) -> str:
    interval = row[f"{name}_ci"]
    return f"{_pct(row[name])} [{interval['low']:.1f}–{interval['high']:.1f}]"


GROUP_HEADER = (
    f"{'group':<14} {'n':>5} {'win rate [95 % interval]':>28} {'decisive':>10} "
    f"{'expectancy':>11} {'PF':>6}  judgement"
)


def group_line(row: dict[str, Any], name: str) -> str:
    """One group's line of the text report (the replay's summary prints the same lines)."""
    return (
        f"{(row[name] or 'none'):<14} {row['n']:>5} {_interval(row, 'win_rate'):>28} "
        f"{_pct(row['decisive_win_rate']):>10} {_pct(row['expectancy_pct']):>11} "
        f"{_number(row['profit_factor']):>6}  {row['judgement']}"
    )


def render_text(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"Performance of {_period(summary)} (market time), outcomes at {summary['horizon']}",
        "",
        f"signals {summary['total_signals']}, outcomes checked {summary['outcomes_checked']}, "
        f"pending {summary['outcomes_pending']}, unavailable {summary['outcomes_unavailable']}",
        f"wins {summary['wins']}, losses {summary['losses']}, neutral {summary['neutral']}",
        f"win rate          {_interval(summary, 'win_rate')}",
        f"loss rate         {_interval(summary, 'loss_rate')}",
        f"neutral rate      {_interval(summary, 'neutral_rate')}",
        f"decisive win rate {_interval(summary, 'decisive_win_rate')}",
        f"avg win {_pct(summary['avg_win_pct'])}, avg loss {_pct(summary['avg_loss_pct'])}, "
        f"expectancy {_pct(summary['expectancy_pct'])}, total P&L "
        f"{_pct(summary['total_pnl_pct'])}, profit factor {_number(summary['profit_factor'])}",
        f"excess return over BTC {_pct(summary['avg_excess_return_pct'])} "
        f"(n = {summary['excess_n']})",
        f"judgement: {summary['judgement']} (groups need n >= {summary['min_sample']})",
    ]
    for title, key in (
        ("By scanner", "by_scanner"),
        ("By tier", "by_tier"),
        ("By interval", "by_interval"),
        ("By signal type", "by_signal_type"),
    ):
        lines += ["", title, GROUP_HEADER]
        lines += [group_line(row, "group") for row in report[key]] or ["(none)"]
    top = report["top_performers"]
    for title, key in (("Best symbols", "best_symbols"), ("Worst symbols", "worst_symbols")):
        lines += ["", f"{title} (n >= {top['min_signals_per_symbol']})", GROUP_HEADER]
        lines += [group_line(row, "symbol") for row in top[key]] or ["(none)"]
    advice = report["recommendations"]
    lines += ["", "Recommendations"]
    lines += [f"[{r['priority']}] {r['message']}" for r in advice["recommendations"]] or ["(none)"]
    lines += [f"withheld ({w['topic']}): {w['reason']}" for w in advice["withheld"]]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Print the performance report of the signals' measured outcomes (the same numbers as "
        "GET /api/performance/report): win rates with 95 % Wilson intervals, expectancy, "
        "profit factor, breakdowns, top performers and recommendations."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            help=f"signals of the last N days of market time (default {DEFAULT_DAYS} unless "
            "--since or --until is given; not with them)",
        )
        parser.add_argument(
            "--since",
            help="signals from this market time on, included: ISO 8601 date (its midnight UTC) "
            "or time (UTC without an offset), e.g. 2024-03-01 or 2024-03-01T12:00Z",
        )
        parser.add_argument(
            "--until",
            help="signals up to this market time, included (default: now); a date means its "
            "midnight UTC",
        )
        parser.add_argument(
            "--horizon",
            default=performance_filters.HEADLINE_HORIZON,
            choices=Horizon.values,
            help=f"outcome horizon of the numbers (default {performance_filters.HEADLINE_HORIZON})",
        )
        parser.add_argument(
            "--json", action="store_true", help="print the API's report data as JSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = _moment(options["since"], "since"), _moment(options["until"], "until")
        days = None if options["days"] is None else _positive_days(options["days"])
        try:
            windows.window_check(days, since, until)
        except windows.WindowError as error:
            raise CommandError(f"--{error.parameter}: {error.message}") from None
        if days is None and since is None and until is None:
            days = DEFAULT_DAYS
        filters = performance_filters.PerformanceFilters(
            days=days, since=since, until=until, horizon=options["horizon"]
        )
        report = analytics.performance_report(filters)
        if options["json"]:
            self.stdout.write(json.dumps(report, cls=JSONEncoder, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(render_text(report))

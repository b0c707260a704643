"""python manage.py performance_report [--days N] [--horizon H] [--json]: the performance report
of GET /api/performance/report, as text or (--json) as exactly the API's `data`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.utils.encoders import JSONEncoder

from tracking import analytics
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


def _group_line(row: dict[str, Any], name: str) -> str:
    return (
        f"{(row[name] or 'none'):<14} {row['n']:>5} {_interval(row, 'win_rate'):>28} "
        f"{_pct(row['decisive_win_rate']):>10} {_pct(row['expectancy_pct']):>11} "
        f"{_number(row['profit_factor']):>6}  {row['judgement']}"
    )


def render_text(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"Performance of the last {summary['period_days']} days to "
        f"{summary['as_of']:%Y-%m-%d %H:%M} UTC (market time), outcomes at {summary['horizon']}",
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
        lines += [_group_line(row, "group") for row in report[key]] or ["(none)"]
    top = report["top_performers"]
    for title, key in (("Best symbols", "best_symbols"), ("Worst symbols", "worst_symbols")):
        lines += ["", f"{title} (n >= {top['min_signals_per_symbol']})", GROUP_HEADER]
        lines += [_group_line(row, "symbol") for row in top[key]] or ["(none)"]
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
            default=str(DEFAULT_DAYS),
            help=f"signals of the last N days of market time (default {DEFAULT_DAYS})",
        )
        parser.add_argument(
            "--horizon",
            default=analytics.HEADLINE_HORIZON,
            choices=Horizon.values,
            help=f"outcome horizon of the numbers (default {analytics.HEADLINE_HORIZON})",
        )
        parser.add_argument(
            "--json", action="store_true", help="print the API's report data as JSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        filters = analytics.PerformanceFilters(
            days=_positive_days(options["days"]), horizon=options["horizon"]
        )
        report = analytics.performance_report(filters)
        if options["json"]:
            self.stdout.write(json.dumps(report, cls=JSONEncoder, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(render_text(report))

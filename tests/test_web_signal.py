"""The signal page (`/signals/<id>/`, what every alert links to): its chart in a real browser, its
numbers, and who may open it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from alerts.rendering import signal_url
from market.models import ReplayClock
from tests.factories import (
    START,
    CheckedOutcomeFactory,
    MarketFactory,
    OutcomeCheckFactory,
    ScanResultFactory,
    ScanRunFactory,
    SignalFactory,
    UnifiedRankingFactory,
    UserFactory,
    hourly_candles,
)
from tracking.models import Signal

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = START + timedelta(hours=48)
# 48 hours before the signal, then 72 after: a climb to +6 % by the 24th hour after it.
CLOSES = [100.0] * 48 + [100.0 + 0.25 * min(hour, 24) for hour in range(1, 73)]


def signal_with_path(**fields: object) -> Signal:
    """An RSI LONG signal on X/USDT at 100 with its candles, three checks done (1h, 4h, 24h; 24h a
    WIN with BTC behind it) and two open (7d, 30d)."""
    hourly_candles(MarketFactory(base="X"), CLOSES, start=AS_OF - timedelta(hours=48))
    run = ScanRunFactory(scanner="rsi", as_of=AS_OF, symbols=["X/USDT"])
    fields.setdefault("scan_run", run)
    signal = SignalFactory(symbol="X/USDT", as_of=AS_OF, entry_price=100.0, **fields)
    for horizon, change in (("1h", 0.25), ("4h", 1.0), ("24h", 6.0)):
        CheckedOutcomeFactory(
            signal=signal,
            horizon=horizon,
            return_pct=change,
            mfe_pct=change + 0.5,
            mae_pct=-0.5,
            first_barrier="win" if change >= 5 else "none",
            btc_return_pct=1.5,
            excess_return_pct=change - 1.5,
        )
    for horizon in ("7d", "30d"):
        OutcomeCheckFactory(signal=signal, horizon=horizon)
    return signal


RSI_COUNTED = {
    "label": "RSI", "score": 80.0, "weight": 0.2, "contribution": 80.0, "available": True,
    "missing": None, "fired": "LONG", "confirms": True, "as_of": AS_OF.isoformat(),
}  # fmt: skip
SOCIAL_MISSING = {
    "label": "Social", "score": None, "weight": 0.15, "contribution": None, "available": False,
    "missing": "no Social result for this coin", "fired": None, "confirms": False, "as_of": None,
}  # fmt: skip


def manual_signal_of(owner: User) -> Signal:
    return SignalFactory(scanner="manual", owner=owner, symbol="X/USDT", as_of=AS_OF)


# --- in the browser ---------------------------------------------------------------------------


def test_signal_page_draws_the_candles_with_entry_barriers_and_horizon_checks(
    signed_in_page,
) -> None:
    signal = signal_with_path()
    page = signed_in_page(UserFactory())
    page.goto(f"/signals/{signal.pk}/")
    page.wait_for_function("document.querySelector('#price-chart').csxChart !== undefined")
    drawn = page.evaluate(
        """() => {
          const chart = document.querySelector('#price-chart').csxChart;
          return {series: chart.series.length, candles: chart.candles,
                  lines: chart.lines, markers: chart.markers};
        }"""
    )
    assert drawn["series"] == 1
    assert drawn["candles"] == len(CLOSES)
    assert drawn["lines"][:3] == ["Entry", "Win barrier (+5 %)", "Loss barrier (-3 %)"]
    assert drawn["lines"][3:] == ["MFE 24h (+6.50 %)", "MAE 24h (-0.50 %)"]
    assert drawn["markers"] == [
        "LONG @ 100",
        "1h NEUTRAL +0.25 %",
        "4h NEUTRAL +1.00 %",
        "24h WIN +6.00 %",
    ]


def test_signal_chart_paints_its_canvas(signed_in_page) -> None:
    signal = signal_with_path()
    page = signed_in_page(UserFactory())
    page.goto(f"/signals/{signal.pk}/")
    page.wait_for_function("document.querySelector('#price-chart').csxChart !== undefined")
    painted = page.evaluate(
        """() => Array.from(document.querySelectorAll('#price-chart canvas')).some((canvas) => {
          if (!canvas.width || !canvas.height) return false;
          const context = canvas.getContext('2d');
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          const first = pixels.slice(0, 4).join();
          for (let i = 4; i < pixels.length; i += 4) {
            if (pixels.slice(i, i + 4).join() !== first) return true;
          }
          return false;
        })"""
    )
    assert painted


def test_signal_page_fits_a_phone_screen_without_sideways_scrolling(signed_in_page) -> None:
    signal = signal_with_path()
    page = signed_in_page(UserFactory(), width=390, height=844)
    page.goto(f"/signals/{signal.pk}/")
    page.wait_for_function("document.querySelector('#price-chart').csxChart !== undefined")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# --- its numbers (test client) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "win", "loss"), [("LONG", "105", "97"), ("SHORT", "95", "103")]
)
def test_signal_page_puts_the_barriers_five_percent_for_and_three_against_the_signal(
    client, direction, win, loss
) -> None:
    signal = SignalFactory(symbol="X/USDT", direction=direction, entry_price=100.0)
    client.force_login(UserFactory())
    page = client.get(f"/signals/{signal.pk}/").content.decode()
    levels = page.split('data-testid="levels-table"')[1].split("</table>")[0]
    assert f'Win barrier (+5 %)</th><td class="num">{win}<' in levels
    assert f'Loss barrier (-3 %)</th><td class="num">{loss}<' in levels


def test_signal_page_shows_each_horizon_with_its_outcome_and_the_btc_comparison(client) -> None:
    signal = signal_with_path()
    client.force_login(UserFactory())
    page = client.get(f"/signals/{signal.pk}/").content.decode()
    row = page.split('data-horizon="24h"')[1].split("</tr>")[0]
    assert ">WIN<" in row
    assert ">6.0<" in row  # its return
    assert ">1.5<" in row  # BTC's
    assert ">4.5<" in row  # the excess over BTC
    assert "pending" in page.split('data-horizon="30d"')[1].split("</tr>")[0]


def test_signal_page_shows_the_scanner_scores_reasons_and_inputs_with_what_was_missing(
    client,
) -> None:
    signal = signal_with_path(reasons=["RSI 18.5 < 25"], scores={"rsi": 18.5})
    ScanResultFactory(
        run=signal.scan_run,
        scanner="rsi",
        symbol="X/USDT",
        direction="LONG",
        scores={"rsi": 18.5},
        reasons=["RSI(14) 18.5 is oversold"],
        inputs={"closes": 200, "funding_rate": {"missing": "no perpetual for X/USDT"}},
    )
    client.force_login(UserFactory())
    page = client.get(f"/signals/{signal.pk}/").content.decode()
    assert "RSI 18.5 &lt; 25" in page
    assert "RSI(14) 18.5 is oversold" in page
    result = page.split('data-scanner="rsi"')[1].split("</article>")[0]
    assert "closes" in result
    assert ">200<" in result
    assert "missing: no perpetual for X/USDT" in result


def test_signal_page_names_the_components_the_unified_score_had_to_do_without(client) -> None:
    signal = signal_with_path()
    UnifiedRankingFactory(
        symbol="X/USDT",
        scan_run=signal.scan_run,
        breakdown={"rsi": RSI_COUNTED, "social": SOCIAL_MISSING},
    )
    client.force_login(UserFactory())
    page = client.get(f"/signals/{signal.pk}/").content.decode()
    social = page.split('data-component="social"')[1].split("</tr>")[0]
    assert "no Social result for this coin" in social
    assert "(confirms)" in page.split('data-component="rsi"')[1].split("</tr>")[0]


def test_signal_page_without_candles_says_why_instead_of_drawing(client) -> None:
    signal = SignalFactory(symbol="NOPE/USDT")
    client.force_login(UserFactory())
    page = client.get(f"/signals/{signal.pk}/").content.decode()
    assert 'data-testid="no-candles"' in page
    assert "no binance spot market NOPE/USDT" in page
    assert 'id="price-chart"' not in page


def test_signal_candles_csv_holds_the_candles_the_chart_draws(client) -> None:
    signal = signal_with_path()
    client.force_login(UserFactory())
    response = client.get(f"/signals/{signal.pk}/candles.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["open_time_utc", "open", "high", "low", "close"]
    assert len(rows) == 1 + len(CLOSES)
    assert rows[1][0] == (AS_OF - timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [float(row[4]) for row in rows[1:]] == CLOSES


def test_signal_page_in_a_replay_shows_no_candle_after_the_market_time(client, settings) -> None:
    settings.MARKET_SOURCE = "replay"
    signal = signal_with_path()
    ReplayClock.objects.create(
        pk=1,
        market_time=AS_OF + timedelta(hours=10),
        start=START,
        end=AS_OF + timedelta(hours=72),
        step=timedelta(minutes=5),
    )
    client.force_login(UserFactory())
    rows = list(csv.reader(io.StringIO(client.get(f"/signals/{signal.pk}/candles.csv").text)))
    assert rows[-1][0] == (AS_OF + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(rows) == 1 + 48 + 10


def test_a_signal_that_does_not_exist_is_a_404(client) -> None:
    client.force_login(UserFactory())
    assert client.get("/signals/999999/").status_code == 404


def test_alerts_link_to_the_signal_page(settings) -> None:
    settings.SITE_URL = "https://scan.example.org/"
    assert signal_url(42) == "https://scan.example.org/signals/42/"


# --- who may open it --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/signals/{pk}/", "/signals/{pk}/candles.csv"])
def test_anonymous_visitor_of_a_signal_is_sent_to_sign_in(client, path) -> None:
    signal = SignalFactory()
    response = client.get(path.format(pk=signal.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/signals/")


@pytest.mark.parametrize("path", ["/signals/{pk}/", "/signals/{pk}/candles.csv"])
@pytest.mark.parametrize(
    ("who", "whose", "status"),
    [
        ("user", "scanner", 200),  # every scanner's signal is everyone's
        ("user", "another user's manual", 404),
        ("owner", "own manual", 200),
        ("staff", "another user's manual", 404),  # staff alone does not see others' own
        ("superuser", "another user's manual", 200),  # holds tracking.view_signal
    ],
)
def test_who_may_open_which_signal(client, path, who, whose, status) -> None:
    owner = UserFactory(username="owner")
    if who == "superuser":
        viewer = User.objects.create_superuser("root", "root@example.org", "pw-root-12345")
    elif who == "staff":
        viewer = UserFactory(username="staff", is_staff=True)
    else:
        viewer = owner if who == "owner" else UserFactory(username="someone")
    signal = SignalFactory() if whose == "scanner" else manual_signal_of(owner)
    client.force_login(viewer)
    assert client.get(path.format(pk=signal.pk)).status_code == status

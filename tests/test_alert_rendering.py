"""Alert messages: Telegram HTML, every dynamic part escaped, under 4096 characters."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from alerts.models import Alert, AlertTier
from alerts.rendering import MAX_MESSAGE_CHARS, render_digest, render_signal_alert, signal_url
from alerts.rules import SignalContext
from tests.factories import SignalFactory

pytestmark = pytest.mark.django_db

HOSTILE = "<b>X</b>&<script>\"'/USDT"
MARKDOWN = "*_PE[P]E_*`~>#+-=|{}.!/USDT"
ALLOWED_TAGS = {"b", "i", "a"}


class Telegramish(HTMLParser):
    """Collects tags and visible text the way Telegram's HTML parse mode reads a message."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])

    def handle_data(self, data: str) -> None:
        self.text += data


def parse(text: str) -> Telegramish:
    parser = Telegramish()
    parser.feed(text)
    parser.close()
    return parser


def context(**scores) -> SignalContext:
    return SignalContext(scores=scores, unified_tier="TIER_1", unified_score=86.4, confidence=75)


def test_a_signal_alert_has_every_part_of_the_plans_format(settings) -> None:
    settings.SITE_URL = "https://scan.example.org/"
    signal = SignalFactory(
        scanner="smart_money",
        symbol="BTC/USDT",
        scores={"accumulation": 9, "distribution": 2},
        reasons=["buy share 0.58 > 0.55", "funding -0.01 % < 0"],
    )
    text = render_signal_alert(
        signal, AlertTier.TIER_1, context(accumulation=9.0, distribution=2.0, rsi=18.5)
    )
    shown = parse(text)
    assert shown.text.splitlines()[0] == "🚨 TIER 1 · URGENT"
    assert "BTC/USDT 🟢 LONG" in shown.text
    assert "Signal: Smart money" in shown.text
    assert "Score: Accumulation 9/10" in shown.text
    for line in ("• Accumulation: 9/10", "• Distribution: 2/10", "• RSI(14): 18.5"):
        assert line in shown.text
    assert "• Unified: 86.4/100 (TIER_1)" in shown.text
    assert "Confidence: 75 %" in shown.text
    assert "• buy share 0.58 > 0.55" in shown.text
    assert shown.hrefs == [f"https://scan.example.org/signals/{signal.pk}/"]
    assert set(shown.tags) <= ALLOWED_TAGS


@pytest.mark.parametrize("symbol", [HOSTILE, MARKDOWN])
def test_hostile_symbols_and_reasons_show_as_text(symbol) -> None:
    signal = SignalFactory(scanner="rsi", symbol=symbol, reasons=[f"</a><a href='x'>{symbol}"])
    text = render_signal_alert(signal, AlertTier.TIER_2, context(rsi=21.0))
    assert "<script>" not in text
    assert "<b>X</b>" not in text
    shown = parse(text)
    assert set(shown.tags) <= ALLOWED_TAGS
    assert shown.tags.count("a") == 1  # only the link to the signal
    assert symbol in shown.text  # shown as it is, nothing lost
    assert f"</a><a href='x'>{symbol}" in shown.text
    # Telegram's HTML mode knows only &lt; &gt; &amp; &quot; and numeric entities.
    for entity in text.split("&")[1:]:
        name = entity.split(";")[0]
        assert name in {"lt", "gt", "amp", "quot"} or name.startswith("#"), name


def test_markdown_specials_are_left_alone_in_html_mode() -> None:
    signal = SignalFactory(scanner="rsi", symbol=MARKDOWN)
    text = render_signal_alert(signal, AlertTier.TIER_3, context(rsi=28.0))
    assert MARKDOWN.replace(">", "&gt;") in text  # HTML's own specials only
    assert "\\" not in text


def test_a_message_stays_under_telegrams_limit() -> None:
    signal = SignalFactory(scanner="rsi", symbol="&" * 64, reasons=["<" * 5000] * 50)
    text = render_signal_alert(signal, AlertTier.TIER_2, context(rsi=21.0))
    assert len(text) <= MAX_MESSAGE_CHARS
    shown = parse(text)
    assert "&" * 64 in shown.text
    assert shown.hrefs  # the link survives


def test_a_digest_lists_the_folded_alerts_highest_tier_first() -> None:
    alerts = [
        Alert(tier=tier, signal=SignalFactory(symbol=symbol, scanner="mss", scanner_score=80.0))
        for tier, symbol in [(3, "LOW/USDT"), (1, HOSTILE), (2, "MID/USDT")]
    ]
    text = render_digest(alerts, "Alert limits: 10 an hour.")
    shown = parse(text)
    lines = shown.text.splitlines()
    assert lines[0] == "📦 Digest: 3 alerts held back"
    assert lines[1] == "Alert limits: 10 an hour."
    assert [line.split()[1] for line in lines[3:]] == [HOSTILE, "MID/USDT", "LOW/USDT"]
    assert set(shown.tags) <= ALLOWED_TAGS
    assert len(shown.hrefs) == 3


def test_a_long_digest_says_how_many_more_and_stays_under_the_limit() -> None:
    signal = SignalFactory(symbol="&<>" * 20, scanner="rsi")
    alerts = [Alert(tier=2, signal=signal) for _ in range(500)]
    text = render_digest(alerts, "limits")
    assert len(text) <= MAX_MESSAGE_CHARS
    shown = parse(text)
    assert "📦 Digest: 500 alerts held back" in shown.text
    assert "more (see Alerts in the admin)" in shown.text.splitlines()[-1]
    listed = len(shown.hrefs)
    assert f"… and {500 - listed} more" in shown.text


@pytest.mark.parametrize(
    ("scanner", "scores", "value"),
    [
        ("rsi", {"rsi": 17.7}, "RSI(14) 17.7"),
        ("smart_money", {"accumulation": 8.5, "distribution": 1.0}, "Accumulation 8.5/10"),
        ("mss", {"mss": 91.0}, "MSS 91/100"),
    ],
)
def test_a_digest_shows_each_scanners_own_value_as_the_single_alert_does(
    scanner, scores, value
) -> None:
    signal = SignalFactory(scanner=scanner, scores=scores, scanner_score=82.3)
    single = parse(render_signal_alert(signal, AlertTier.TIER_2, SignalContext(scores=scores)))
    digest = parse(render_digest([Alert(tier=2, signal=signal)])).text
    assert f"Score: {value}" in single.text
    assert value in digest
    assert "82.3" not in digest  # the 0–100 component score the value maps to


def test_alert_links_use_the_address_the_product_is_served_on(settings) -> None:
    from cryptosatx.config import load_config

    settings.SITE_URL = load_config({"RUN_HOST": "0.0.0.0", "RUN_PORT": "9100"})["SITE_URL"]
    signal = SignalFactory()
    shown = parse(render_digest([Alert(tier=1, signal=signal)]))
    assert shown.hrefs == [f"http://127.0.0.1:9100/signals/{signal.pk}/"]
    assert shown.hrefs == [signal_url(signal.pk)]

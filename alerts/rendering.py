"""Alert messages in Telegram's HTML parse mode, short enough for a phone.

Every dynamic part (symbol, reasons, numbers, the link) goes through `html.escape`, so a hostile
symbol such as `<b>X</b>&<script>` shows as text and cannot break the message; Markdown specials
(`_*[]()~>#+-=|{}.!`) mean nothing in HTML mode and are left as they are. A message never exceeds
Telegram's 4096 characters: reasons, then breakdown lines, then digest lines are dropped first.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from django.conf import settings
from django.urls import reverse

from alerts.models import AlertTier
from alerts.rules import SignalContext, own_context

MAX_MESSAGE_CHARS = 4096
MAX_REASONS = 3
MAX_REASON_CHARS = 200

TIER_HEADERS = {
    AlertTier.TIER_1: "🚨 TIER 1 · URGENT",
    AlertTier.TIER_2: "⚡ TIER 2 · HIGH",
    AlertTier.TIER_3: "👀 TIER 3 · MEDIUM",
}
TIER_MARKS = {AlertTier.TIER_1: "🚨", AlertTier.TIER_2: "⚡", AlertTier.TIER_3: "👀"}
DIRECTION_MARKS = {"LONG": "🟢 LONG", "SHORT": "🔴 SHORT"}
SIGNAL_TYPES = {
    "smart_money": "Smart money",
    "mss": "MSS new listing",
    "rsi": "RSI screener",
    "social": "Social trending",
    "unified": "Unified ranking",
}
# Breakdown lines, in this order: (score name, label, scale suffix).
BREAKDOWN = (
    ("accumulation", "Accumulation", "/10"),
    ("distribution", "Distribution", "/10"),
    ("mss", "MSS", "/100"),
    ("rsi", "RSI(14)", ""),
    ("social", "Social", "/100"),
)


def e(value: object) -> str:
    """Escaped for Telegram HTML (quotes too: the text may sit in an attribute)."""
    return escape(str(value), quote=True)


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return text[:-2] if text.endswith(".0") else text


def signal_url(signal_id: int) -> str:
    """The signal's page on the dashboard (`web:signal`), as an absolute address on SITE_URL:
    what every alert links to. Reversed by name, so alerts import nothing of the web app."""
    path = reverse("web:signal", kwargs={"signal_id": signal_id})
    return f"{str(settings.SITE_URL).rstrip('/')}{path}"


def tier_header(tier: int) -> str:
    return TIER_HEADERS.get(tier, f"TIER {tier}")


def signal_type(signal) -> str:
    return SIGNAL_TYPES.get(signal.scanner, str(signal.scanner))


def headline_score(signal, context: SignalContext) -> str:
    """The score that fired, in the scanner's own words (unescaped)."""
    scores = context.scores
    if signal.scanner == "smart_money":
        name = "distribution" if signal.direction == "SHORT" else "accumulation"
        if scores.get(name) is not None:
            return f"{name.capitalize()} {number(scores[name])}/10"
    elif signal.scanner == "mss" and scores.get("mss") is not None:
        return f"MSS {number(scores['mss'])}/100"
    elif signal.scanner == "rsi" and scores.get("rsi") is not None:
        return f"RSI(14) {number(scores['rsi'])}"
    elif signal.scanner == "social" and scores.get("social") is not None:
        return f"Social {number(scores['social'])}/100"
    elif signal.scanner == "unified" and context.unified_score is not None:
        return f"Unified {number(context.unified_score)}/100"
    return f"{number(signal.scanner_score)}/100"


def breakdown_lines(context: SignalContext) -> list[str]:
    lines = [
        f"• {label}: {e(number(context.scores[name]))}{suffix}"
        for name, label, suffix in BREAKDOWN
        if context.scores.get(name) is not None
    ]
    if context.unified_score is not None:
        tier = f" ({e(context.unified_tier)})" if context.unified_tier else ""
        lines.append(f"• Unified: {e(number(context.unified_score))}/100{tier}")
    return lines


def reason_lines(reasons: Iterable[object]) -> list[str]:
    lines = []
    for reason in list(reasons or [])[:MAX_REASONS]:
        text = str(reason)
        if len(text) > MAX_REASON_CHARS:
            text = text[: MAX_REASON_CHARS - 1] + "…"
        lines.append(f"• {e(text)}")
    return lines


def _fit(parts: list[list[str]], limit: int = MAX_MESSAGE_CHARS) -> str:
    """Join blocks of lines; while too long, drop lines from the droppable blocks (all but the
    first and last), last block first."""
    blocks = [list(block) for block in parts]
    while True:
        text = "\n".join(line for block in blocks for line in block)
        if len(text) <= limit:
            return text
        for block in reversed(blocks[1:-1]):
            if block:
                block.pop()
                break
        else:
            return text[:limit]  # only reachable with absurd inputs; never cuts inside a tag below


def render_signal_alert(signal, tier: int, context: SignalContext) -> str:
    """The alert of one signal: tier header, symbol and direction, signal type, score, breakdown,
    confidence, reasons, link to the signal."""
    direction = DIRECTION_MARKS.get(signal.direction, signal.direction)
    head = [
        f"<b>{e(tier_header(tier))}</b>",
        f"<b>{e(signal.symbol)}</b> {e(direction)}",
        f"Signal: {e(signal_type(signal))}",
        f"Score: <b>{e(headline_score(signal, context))}</b>",
    ]
    confidence = context.confidence
    middle = ["Confidence: " + (f"{e(confidence)} %" if confidence is not None else "–")]
    breakdown = breakdown_lines(context)
    reasons = reason_lines(signal.reasons)
    tail = [f'<a href="{e(signal_url(signal.pk))}">Open signal #{e(signal.pk)}</a>']
    blocks = [head]
    if breakdown:
        blocks.append(["", "<b>Breakdown</b>", *breakdown])
    blocks.append(["", *middle])
    if reasons:
        blocks.append(["", "<b>Why</b>", *reasons])
    blocks.append(tail)
    return _fit(blocks)


def own_value(signal) -> str:
    """The value the signal's scanner measured, as the single alert shows it ("RSI(14) 17.7",
    never the 0–100 component score 82.3 the RSI maps to), unescaped."""
    return headline_score(signal, own_context(signal))


def digest_line(alert) -> str:
    """One folded alert in a digest: tier mark, symbol, direction, type, its scanner's own value,
    link."""
    signal = alert.signal
    mark = TIER_MARKS.get(alert.tier, f"T{alert.tier}")
    if signal is None:
        return f"{mark} {e(alert.get_kind_display())}"
    return (
        f'{mark} <a href="{e(signal_url(signal.pk))}">{e(signal.symbol)}</a> '
        f"{e(signal.direction)} · {e(signal_type(signal))} {e(own_value(signal))}"
    )


def render_digest(alerts: list, reason: str = "") -> str:
    """A digest of the alerts a cap held back, highest tier first, under 4096 characters."""
    ordered = sorted(alerts, key=lambda alert: (alert.tier, alert.created_at, alert.pk or 0))
    count = len(ordered)
    head = [f"<b>📦 Digest: {count} alert{'s' if count != 1 else ''} held back</b>"]
    if reason:
        head.append(f"<i>{e(reason)}</i>")
    head.append("")
    lines = [digest_line(alert) for alert in ordered]
    text = "\n".join([*head, *lines])
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    kept: list[str] = []
    for index, line in enumerate(lines):
        more = f"… and {count - index} more (see Alerts in the admin)"
        candidate = "\n".join([*head, *kept, line, f"… and {count - index - 1} more"])
        if len(candidate) > MAX_MESSAGE_CHARS - 40:
            return "\n".join([*head, *kept, e(more)])
        kept.append(line)
    return "\n".join([*head, *kept])  # pragma: no cover


def cap_reason() -> str:
    return (
        f"Alert limits: {settings.MAX_ALERTS_PER_HOUR} an hour, "
        f"TIER 1 {settings.TIER_1_MAX_PER_DAY} and TIER 2 {settings.TIER_2_MAX_PER_DAY} a day."
    )

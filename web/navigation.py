"""The dashboard's navigation, in one place: every page's entry, in the order the bar shows them.

Portfolios and backtests get entries here when they are built; until then they are not shown (a
link to a page that does not exist would be a placeholder).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str


NAVIGATION: tuple[NavEntry, ...] = (
    NavEntry("Overview", "web:overview"),
    NavEntry("Signals", "web:signals"),
    NavEntry("Performance", "web:performance"),
    NavEntry("Scans", "web:scans"),
    NavEntry("Watchlists", "web:watchlists"),
    NavEntry("Alerts", "web:alerts"),
)


def navigation(request: HttpRequest) -> dict[str, object]:
    """Template context processor: `nav`, the entries whose page exists, each marked current."""
    entries = []
    for entry in NAVIGATION:
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:  # a page not merged yet; never a dead link
            continue
        current = request.path == url or (url != "/" and request.path.startswith(url))
        entries.append({"label": entry.label, "url": url, "current": current})
    return {"nav": entries}

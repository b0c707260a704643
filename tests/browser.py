"""Browser tests: headless Chromium (Debian's package, driven by Playwright) against the live test
server, signed in as a given user.

Use `signed_in_page(user)` for a Playwright page with that user's session cookie. Every page a test
opens is watched: console errors, uncaught exceptions, failed requests and HTTP errors are collected
and a test fails on any of them at teardown (`page_problems.allow(...)` lets a test expect one). On
a failing test a full-page screenshot of each open page is written to var/test-screenshots/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import services

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "test-screenshots"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Keep each phase's report on the item: fixtures know at teardown whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that opens the browser is a `browser` test (skipped without Chromium, never in CI)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module. Not per session: Playwright's sync API keeps an
    event loop running in this thread while it is open, which breaks later tests' asyncio.run."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test around it
    # are still plain synchronous calls, which Django would otherwise refuse.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=services.CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageProblems:
    """What went wrong in the pages of one test: console errors, page errors, failed requests."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        """A problem the test expects (e.g. the 404 of another user's watchlist)."""
        self.allowed.append(re.compile(pattern))

    def add(self, problem: str) -> None:
        self.found.append(problem)

    def unexpected(self) -> list[str]:
        return [p for p in self.found if not any(a.search(p) for a in self.allowed)]


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def signed_in_page(
    request: pytest.FixtureRequest,
    browser: object,
    live_server: object,
    page_problems: PageProblems,
) -> Iterator[Callable[..., object]]:
    """`signed_in_page(user, width=1280)`: a new browser context signed in as `user` (None:
    anonymous), its base URL the live server. Watches for problems; screenshots on failure."""
    from django.conf import settings
    from django.test import Client

    contexts = []

    def open_page(user: object | None, *, width: int = 1280, height: int = 900) -> object:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME]
            context.add_cookies(
                [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
            )
        page = context.new_page()
        page.on(
            "console",
            lambda m: m.type == "error" and page_problems.add(f"console error: {m.text}"),
        )
        page.on("pageerror", lambda error: page_problems.add(f"page error: {error}"))
        page.on(
            "requestfailed",
            lambda r: page_problems.add(f"request failed: {r.method} {r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r: r.status >= 400 and page_problems.add(f"HTTP {r.status}: {r.url}"),
        )
        contexts.append(context)
        return page

    yield open_page

    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for n, context in enumerate(contexts):
            for m, page in enumerate(context.pages):
                name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{n}-{m}.png"), full_page=True)
    for context in contexts:
        context.close()
    problems = page_problems.unexpected()
    if problems and not failed:
        pytest.fail("the pages had problems:\n" + "\n".join(problems))

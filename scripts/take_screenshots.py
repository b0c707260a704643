"""Screenshots of the dashboard for the README, taken in headless Chromium from a running server.

    python scripts/take_screenshots.py --url http://127.0.0.1:8000 --user admin --password ...

Signs in through the sign-in page, opens the overview, the performance page and the page of the
newest signal with the most horizon checks done, and writes docs/screenshots/<page>.png. Meant for a
database that replayed some weeks of the bundled sample (`manage.py replay --speed max`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


def sign_in(page: Page, user: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def shoot(page: Page, path: str, name: str, *, wait_for: str = "canvas") -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if wait_for:
        page.locator(wait_for).first.wait_for()
    page.wait_for_timeout(500)  # chart animations end (a screenshot, not a test)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
    print(f"docs/screenshots/{name}.png ← {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument(
        "--signal", type=int, help="the signal page to show (default: the first listed)"
    )
    parser.add_argument(
        "--window",
        default="",
        help="the performance page's query, e.g. since=2023-12-01T00:00Z&until=2024-01-10T00:00Z"
        " (a replayed database without a running replay clock has nothing in the last 30 days)",
    )
    parser.add_argument("--dark", action="store_true", help="dark colour scheme")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            base_url=args.url,
            viewport={"width": 1280, "height": 900},
            color_scheme="dark" if args.dark else "light",
        )
        page = context.new_page()
        sign_in(page, args.user, args.password)
        shoot(page, "/", "overview", wait_for="table")
        shoot(page, f"/performance/?{args.window}", "performance")
        if args.signal is None:
            page.goto("/signals/")
            href = page.locator("a[href^='/signals/'][href$='/']").first.get_attribute("href")
        else:
            href = f"/signals/{args.signal}/"
        shoot(page, href, "signal")
        browser.close()


if __name__ == "__main__":
    main()

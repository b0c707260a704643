"""The overview page in a real browser, and who may open it."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_visitor_of_the_overview_is_sent_to_sign_in(client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_user_signs_in_on_the_sign_in_page_and_lands_on_the_overview(signed_in_page) -> None:
    bob = UserFactory(username="bob")
    bob.set_password("a-long-password-1")
    bob.save()
    page = signed_in_page(None)
    page.goto("/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "a-long-password-1")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Overview"


def test_overview_shows_the_health_status_to_a_signed_in_user(signed_in_page) -> None:
    page = signed_in_page(UserFactory())
    page.goto("/")
    assert page.get_by_test_id("health-status").inner_text() in {"ok", "waiting", "error"}
    assert page.get_by_role("navigation", name="Main").get_by_role("link").count() >= 1

"""The callers of the dashboard's access matrices (tests/test_web_*.py): nobody signed in
(`anon`), the owner of the objects a row names (`owner`), another user (`user`) and a superuser
(`staff`), each a Django test client with a session; and what "sent to sign in" looks like."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from tests.factories import UserFactory

ROLES = ("anon", "user", "owner", "staff")
LOGIN = "login"  # an expected answer: 302 to the sign-in page, back here afterwards


def client_as(role: str, owner: User) -> Client:
    """A client signed in as the role's user (`owner` is the owner's)."""
    client = Client()
    user = {
        "anon": lambda: None,
        "user": lambda: UserFactory(username="bob"),
        "owner": lambda: owner,
        "staff": lambda: UserFactory(username="root", is_staff=True, is_superuser=True),
    }[role]()
    if user is not None:
        client.force_login(user)
    return client


def answered(response: HttpResponse, expected: int | str) -> bool:
    """Whether the response is the expected status, or (LOGIN) a redirect to sign in."""
    if expected == LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/login/?next=")
    return response.status_code == expected

"""The callers of the dashboard's access matrices (tests/test_web_*.py): nobody signed in
(`anon`), the owner of the objects a row names (`owner`: the test's `user` fixture, Alice),
another user (`user`) and a superuser (`staff`), each a Django test client with a session; what
"sent to sign in" looks like; and a matrix's rows as one test case per role."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from tests.factories import UserFactory

ROLES = ("anon", "user", "owner", "staff")
LOGIN = "login"  # an expected answer: 302 to the sign-in page, back here afterwards


def user_as(role: str, owner: User) -> User | None:
    """The role's user: None for `anon`, `owner` for the owner, a new user otherwise (Bob for
    `user`, root for `staff`)."""
    return {
        "anon": lambda: None,
        "user": lambda: UserFactory(username="bob"),
        "owner": lambda: owner,
        "staff": lambda: UserFactory(username="root", is_staff=True, is_superuser=True),
    }[role]()


def client_as(role: str, owner: User) -> Client:
    """A client signed in as the role's user (`owner` is the owner's)."""
    client = Client()
    user = user_as(role, owner)
    if user is not None:
        client.force_login(user)
    return client


def role_cases(matrix: Sequence[tuple]) -> list:
    """An access matrix as pytest cases, one per row and role. Each row is the request (method,
    path, then any further columns) followed by one expected answer per role of ROLES; a case is
    (*request, role, expected), its id "METHOD PATH as ROLE"."""
    cases = []
    for row in matrix:
        request, answers = row[: -len(ROLES)], row[-len(ROLES) :]
        method, path = request[0], request[1]
        cases += [
            pytest.param(*request, role, expected, id=f"{method} {path} as {role}")
            for role, expected in zip(ROLES, answers, strict=True)
        ]
    return cases


def answered(response: HttpResponse, expected: int | str) -> bool:
    """Whether the response is the expected status, or (LOGIN) a redirect to sign in."""
    if expected == LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/login/?next=")
    return response.status_code == expected

"""Schemathesis against the live server: every operation of /api/schema/, with data made from the
schema (positive) and data that breaks it (negative), as a staff user and as anonymous.

The checks: no server error, every status and content type the schema documents, every body
matching its documented schema. Examples are bounded (EXAMPLES per operation and mode,
derandomized, no shrinking) so the module stays fast; a deeper run is the `st run` command in
the README's API section. Requests go only to the live test server (pytest-django's
`live_server`): the schema is read from it and every case is sent to its URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import (
    AlertFactory,
    MarketFactory,
    ScanRunFactory,
    SignalFactory,
    UserFactory,
    WatchlistFactory,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 6  # per operation and generation mode


@dataclass
class Run:
    """What one schemathesis run did: operations tested, requests made, failures found."""

    operations: int = 0
    examples: int = 0
    without_negative_cases: int = 0
    failures: list[str] = field(default_factory=list)


def _fuzz(base_url: str, headers: dict[str, str], ids: dict[str, int], examples: int) -> Run:
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/")
    run = Run()
    for result in schema.get_all_operations():
        operation = result.ok()
        run.operations += 1
        # An existing object for the operations on one, so they reach past the 404.
        prefix = operation.path.split("{")[0]
        fixed = {"id": ids[prefix]} if "{id}" in operation.path and prefix in ids else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Negative cases break the id too (a 404 before any view), so only positive ones
            # get the existing object.
            strategy = operation.as_strategy(
                generation_mode=mode,
                path_parameters=fixed if mode == GenerationMode.POSITIVE else None,
            )

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case: schemathesis.Case) -> None:
                run.examples += 1
                case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

            try:
                call()
            except Unsatisfiable:
                # Nothing to break: an operation without parameters or body has no negative case.
                run.without_negative_cases += 1
            # Schemathesis raises a FailureGroup (a BaseExceptionGroup); every operation is tried
            # and every failure reported.
            except (Exception, BaseExceptionGroup) as failure:
                run.failures.append(f"{operation.label} ({mode}): {failure}")
    return run


@pytest.fixture
def objects() -> dict[str, int]:
    """One object of each kind, by the path prefix of its detail route."""
    staff = UserFactory(username="staff", is_staff=True, is_superuser=True)
    MarketFactory(base="BTC")
    market = MarketFactory(base="ETH")
    return {
        "staff": staff.pk,
        "/api/markets/": market.pk,
        "/api/scans/": ScanRunFactory().pk,
        "/api/watchlists/": WatchlistFactory(owner=staff).pk,
        "/api/signals/": SignalFactory().pk,
        "/api/alerts/": AlertFactory().pk,
    }


@pytest.fixture
def staff_headers(objects: dict[str, int]) -> dict[str, str]:
    token = Token.objects.create(user_id=objects["staff"])
    return {"Authorization": f"Token {token.key}"}


def _report(run: Run) -> str:
    return (
        f"{run.operations} operations ({run.without_negative_cases} without negative cases), "
        f"{run.examples} examples, {len(run.failures)} failures:\n" + "\n\n".join(run.failures)
    )


def test_the_api_answers_every_generated_request_as_documented_for_staff(
    live_server, objects, staff_headers
):
    run = _fuzz(live_server.url, staff_headers, objects, EXAMPLES)
    print(_report(run))
    assert run.operations >= 30
    assert run.failures == [], _report(run)


def test_the_api_answers_every_generated_request_as_documented_for_anonymous(live_server, objects):
    run = _fuzz(live_server.url, {}, objects, 2)
    print(_report(run))
    assert run.failures == [], _report(run)

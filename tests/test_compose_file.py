"""docker-compose.yml and Dockerfile say what users of Compose expect, and run what `make up` runs.

No Docker engine runs here, so the image is not built in these tests: they read the files. What
the healthchecks run is run for real against `make up`'s processes in tests/test_topology.py.
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.processes import ROOT, procfile_entries

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
APP_SERVICES = {name: service for name, service in SERVICES.items() if "build" in service}
LONG_RUNNING = {name for name, service in SERVICES.items() if service.get("restart") != "no"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (keyword.upper(), arguments.strip())
        for keyword, _, arguments in (
            line.strip().partition(" ")
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )
    ]


def makefile_prepare_commands() -> list[str]:
    """The manage.py commands of the Makefile's `prepare` recipe."""
    recipe = (ROOT / "Makefile").read_text().split("\nprepare:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"\$\(MANAGE\) (\w+)", recipe)


def test_every_long_running_service_has_a_healthcheck() -> None:
    assert set(SERVICES) - {"init"} == LONG_RUNNING
    for name in LONG_RUNNING:
        assert SERVICES[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_every_app_service_runs_the_one_image_without_installing_anything() -> None:
    assert set(APP_SERVICES) == set(SERVICES) - {"postgres", "redis"}
    assert {(service["image"], service["build"]) for service in APP_SERVICES.values()} == {
        ("cryptosatx:local", ".")
    }
    for name, service in APP_SERVICES.items():
        assert "pip" not in str(service["command"]), name
        assert "volumes" not in service, f"{name} must run the image's code, not a mount"


def test_app_services_wait_for_init_and_init_waits_for_healthy_postgres_and_redis() -> None:
    assert SERVICES["init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name, service in APP_SERVICES.items():
        if name != "init":
            assert service["depends_on"] == {
                "init": {"condition": "service_completed_successfully"}
            }, name


def test_init_and_the_image_prepare_what_make_prepare_does() -> None:
    init = " ".join(SERVICES["init"]["command"])
    in_init = re.findall(r"manage\.py (\w+)", init)
    in_image = [
        match
        for keyword, arguments in dockerfile_instructions()
        if keyword == "RUN"
        for match in re.findall(r"manage\.py (\w+)", arguments)
    ]
    assert in_image == ["collectstatic"]
    assert sorted(in_init + in_image) == sorted(makefile_prepare_commands())


@pytest.mark.parametrize("entry", ["scans", "outcomes", "alerts_default", "beat"])
def test_compose_runs_the_procfile_command_of(entry: str) -> None:
    command = shlex.split(procfile_entries(ROOT / "Procfile")[entry])
    assert command in [service["command"] for service in APP_SERVICES.values()]


def test_the_dockerfile_installs_requirements_alone_before_copying_the_code() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    copy_requirements = steps.index(("COPY", "requirements.txt ./"))
    install = steps.index(("RUN", "pip install -r requirements.txt"))
    copy_code = steps.index(("COPY", ". ."))
    assert copy_requirements < install < copy_code
    assert "requirements-dev" not in (ROOT / "Dockerfile").read_text()


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"]
    assert users
    assert users[-1] not in {"root", "0"}
    # Nothing runs as root after the switch.
    steps = dockerfile_instructions()
    assert "RUN" not in [keyword for keyword, _ in steps[steps.index(("USER", users[-1])) :]]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var", ".env"} <= ignored

"""The guides in docs/guides/ cannot rot silently: every name they give a reader must exist.

Read from the Markdown (fenced code blocks and inline `code` spans, where commands and names are
written): each `manage.py <command> [args]` is a management command whose own parser accepts those
arguments; each `make <target>` a Makefile target; each `python -m <module>` an importable module;
each setting or environment variable a name the product reads; each bot command one the bot
answers; each endpoint of this product one its URLconf resolves, and each of a local fake one the
fake declares; each Celery task name a registered task; each repository path and relative link an
existing file (with its heading, when the link names one). The README's "Guides" section links
every guide.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError
from django.urls import Resolver404, resolve

from alerts.bot import COMMANDS
from cryptosatx.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
GUIDES_DIR = ROOT / "docs" / "guides"
GUIDES = sorted(GUIDES_DIR.glob("*.md"))
NOT_PRODUCT = {"fakes", "tests", "bench", "docs", "data", "scripts"}
# Files outside the Python packages that read environment variables or name processes.
PRODUCT_FILES = ("Makefile", "Procfile", "docker-compose.yml", "Dockerfile", "celeryconfig.py")
# Commands of Telegram's @BotFather, which telegram.md tells the reader to send to BotFather:
# Telegram's, not this bot's.
BOTFATHER_COMMANDS = {"newbot", "revoke"}

# Fenced blocks, also indented ones inside list items.
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NAME = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w/-])")
ASSIGNED = re.compile(r"(?<![\w$])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=")
MANAGE = re.compile(r"manage\.py\s+(.*)")
MAKE = re.compile(r"(?<![\w-])make\s+([a-z][\w-]*)")
MODULE = re.compile(r"python3?\s+-m\s+([\w.]+)")
BOT_COMMAND = re.compile(r"^/([a-z_]+)(?:@\w+)?(?:\s|$)")
OWN_URL = re.compile(r"http://127\.0\.0\.1:8000(/[^\s\"'`)<>]*)")
FAKE_URL = re.compile(r"http://127\.0\.0\.1:(?:8765|8081)(/__fake__/[\w/]*)")
TASK = re.compile(r"^((?:alerts|scanners|scoring|tracking|cryptosatx)\.[a-z_]+)$")
REPO_PATH = re.compile(r"^[a-z_][\w.-]*(?:/[\w.-]+)*(?:/|\.py|\.md|\.yml|\.txt)$")
TOP_FILES = {"Makefile", "Procfile", "Dockerfile"}


def test_there_are_guides_to_check() -> None:
    assert {path.name for path in GUIDES} >= {"going-live.md", "telegram.md", "distributed.md"}


# --- reading the guides ------------------------------------------------------------------------


@cache
def code_of(path: Path) -> tuple[list[str], list[str]]:
    """(lines of the fenced blocks, inline code spans outside them)."""
    text = path.read_text()
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    spans = INLINE.findall(FENCE.sub("", text))
    return lines, spans


def all_code(path: Path) -> list[str]:
    lines, spans = code_of(path)
    return lines + spans


def guide_ids(path: Path) -> str:
    return path.name


# --- what the product has ----------------------------------------------------------------------


@cache
def product_text() -> str:
    """Every product source file (the apps, celeryconfig, the process files), concatenated."""
    packages = [
        p.parent
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in NOT_PRODUCT and not p.parent.name.startswith(".")
    ]
    parts = [path.read_text() for package in packages for path in sorted(package.rglob("*.py"))]
    parts += [(ROOT / name).read_text() for name in PRODUCT_FILES]
    return "\n".join(parts)


@cache
def environment_names() -> set[str]:
    """Variables the product reads from the environment: the settings table, plus what code
    reads with os.environ / getenv and what the process files expand (${X}, $$X, compose keys)."""
    names = {setting.name for setting in SETTINGS}
    text = product_text()
    names |= set(re.findall(r"environ(?:\.get)?\(\s*[\"']([A-Z0-9_]+)[\"']", text))
    names |= set(re.findall(r"environ\[[\"']([A-Z0-9_]+)[\"']\]", text))
    names |= set(re.findall(r"getenv\(\s*[\"']([A-Z0-9_]+)[\"']", text))
    names |= set(re.findall(r"\$\{?\$?\{?([A-Z][A-Z0-9_]+)", text))
    return names


@cache
def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.*)$", text, re.M)}


# --- the checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_manage_py_command_exists_and_accepts_its_arguments(guide: Path) -> None:
    commands = get_commands()
    problems = []
    for code in all_code(guide):
        for match in MANAGE.finditer(code):
            words = shlex.split(match.group(1), comments=True)
            name, args = words[0], words[1:]
            if name not in commands:
                problems.append(f"manage.py {name}: no such command")
                continue
            parser = load_command_class(commands[name], name).create_parser("manage.py", name)
            try:
                parser.parse_args(args)
            except (CommandError, SystemExit) as error:
                problems.append(f"manage.py {name} {' '.join(args)}: {error}")
    assert problems == []


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_make_target_exists(guide: Path) -> None:
    named = {target for code in all_code(guide) for target in MAKE.findall(code)}
    assert named - make_targets() == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_python_module_run_with_dash_m_exists(guide: Path) -> None:
    modules = {module for code in all_code(guide) for module in MODULE.findall(code)}
    assert {m for m in modules if importlib.util.find_spec(m) is None} == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_variable_a_guide_sets_is_read_by_the_product(guide: Path) -> None:
    assigned = set(ASSIGNED.findall(guide.read_text()))
    assert assigned - environment_names() == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_setting_name_a_guide_mentions_exists_in_the_product(guide: Path) -> None:
    named = set(NAME.findall(guide.read_text()))
    text = product_text()
    unknown = {
        name
        for name in named - environment_names()
        if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text)
    }
    assert unknown == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_bot_command_is_one_the_bot_answers(guide: Path) -> None:
    named = {
        match.group(1) for span in code_of(guide)[1] if (match := BOT_COMMAND.match(span.strip()))
    }
    assert named - set(COMMANDS) - BOTFATHER_COMMANDS == set()


def own_endpoints(guide: Path) -> set[str]:
    """Paths of this product named in a guide: URLs on 127.0.0.1:8000, `/api/…`, `/admin/…`."""
    paths = set(OWN_URL.findall(guide.read_text()))
    for span in code_of(guide)[1]:
        for word in span.split():
            if word.startswith(("/api/", "/admin/")):
                paths.add(word)
    return {path.split("?")[0].replace("{id}", "1") for path in paths}


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_endpoint_of_the_product_resolves(guide: Path) -> None:
    unresolved = []
    for path in sorted(own_endpoints(guide)):
        try:
            resolve(path)
        except Resolver404:
            unresolved.append(path)
    assert unresolved == []


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_endpoint_of_a_fake_is_one_the_fake_serves(guide: Path) -> None:
    paths = set(FAKE_URL.findall(guide.read_text()))
    paths |= {s.split()[0] for s in code_of(guide)[1] if s.startswith("/__fake__/")}
    fakes = "\n".join(p.read_text() for p in sorted((ROOT / "fakes").rglob("*.py")))
    assert {p for p in paths if f'"{p.rstrip("/")}' not in fakes} == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_celery_task_name_is_registered(guide: Path) -> None:
    from cryptosatx.celery import app

    app.loader.import_default_modules()
    named = {m.group(1) for span in code_of(guide)[1] if (m := TASK.match(span.strip()))}
    assert named - set(app.tasks) == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_repository_path_a_guide_names_exists(guide: Path) -> None:
    named = {
        span
        for span in code_of(guide)[1]
        if span in TOP_FILES
        or (REPO_PATH.match(span) and ("/" in span or span.endswith((".py", ".md", ".yml"))))
    }
    missing = {
        path for path in named if not (ROOT / path).exists() and not (GUIDES_DIR / path).exists()
    }
    assert missing == set()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_ids)
def test_every_relative_link_points_at_an_existing_file_and_heading(guide: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", guide.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (guide.parent / file_part).resolve() if file_part else guide
        heading_missing = bool(anchor) and linked.suffix == ".md" and linked.is_file()
        if not linked.is_file() or (heading_missing and anchor not in anchors_of(linked)):
            broken.append(target)
    assert broken == []


def test_the_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = {target for target in LINK.findall(readme) if target.startswith("docs/guides/")}
    assert linked == {f"docs/guides/{path.name}" for path in GUIDES}

"""What `make test` runs: PostgreSQL, Redis and Chromium made ready, then ruff and the suite.

PostgreSQL and Redis on 127.0.0.1 are started when they are installed but down; Debian's chromium
is installed with apt when it is missing (root). Without them the
suite runs on SQLite and pytest lists the skipped tests with the reason; with CI=true a missing
service fails the run instead. Extra arguments go to pytest.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import CHROMIUM, reachable  # noqa: E402
from tests.services import POSTGRES_ADDRESS as POSTGRES  # noqa: E402
from tests.services import REDIS_ADDRESS as REDIS  # noqa: E402

BIN = Path(sys.executable).parent
TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cryptosatx"


def wait_for(address: tuple[str, int], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(address):
            return True
        time.sleep(0.5)
    return False


def start_postgres() -> bool:
    if reachable(POSTGRES):
        return True
    versions = [Path(p).name for p in glob.glob("/etc/postgresql/*")]
    if not versions or not shutil.which("pg_ctlcluster"):
        print("PostgreSQL is not installed here.")
        return False
    print(f"Starting PostgreSQL {versions[0]} ...")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False
    )
    return wait_for(POSTGRES)


def start_redis() -> bool:
    if reachable(REDIS):
        return True
    if not shutil.which("redis-server"):
        print("Redis is not installed here.")
        return False
    print("Starting Redis ...")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=False,
    )
    return wait_for(REDIS)


def ensure_chromium() -> bool:
    """The browser tests drive Debian's chromium; install it (root, apt) when it is missing."""
    if Path(CHROMIUM).exists():
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("Installing Debian's chromium for the browser tests ...")
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
    return Path(CHROMIUM).exists()


def main() -> int:
    in_ci = os.environ.get("CI", "").lower() == "true"
    env = dict(os.environ)
    # The suite chooses its own database and broker; a developer's shell settings must not leak in.
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MARKET_SOURCE"):
        env.pop(name, None)

    have_postgres = start_postgres()
    have_redis = start_redis()
    if have_postgres:
        env["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", TEST_DATABASE_URL)
    have_chromium = ensure_chromium()
    missing = [
        name
        for name, ok in (
            ("PostgreSQL", have_postgres),
            ("Redis", have_redis),
            (f"Chromium ({CHROMIUM})", have_chromium),
        )
        if not ok
    ]
    if missing and in_ci:
        print(f"CI=true and {' and '.join(missing)} could not be started: failing, not skipping.")
        return 1
    if missing:
        print(
            f"WITHOUT {' and '.join(missing)}: the tests that need it are SKIPPED (listed below)."
        )

    steps = [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "pytest"), *sys.argv[1:]],
    ]
    for step in steps:
        print("$", " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)))
        code = subprocess.run(step, cwd=ROOT, env=env, check=False).returncode
        if code != 0:
            # pytest's 5 (nothing collected) fails too: a suite that runs nothing proves nothing.
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

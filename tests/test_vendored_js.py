"""The dashboard's JavaScript is vendored from npm by scripts/vendor_js.py, pinned, and served by
the product itself: no page loads a script or stylesheet from anywhere else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_vendored_libraries_match_their_npm_pins_and_manifest() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/vendor_js.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_template_loads_anything_from_another_host() -> None:
    remote = re.compile(r"""(src|href)\s*=\s*["'](https?:)?//""", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "web" / "templates").rglob("*.html")
        if remote.search(path.read_text())
    ]
    assert offenders == []

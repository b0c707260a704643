"""Vendor the dashboard's JavaScript libraries from npm into web/static/web/vendor/.

The versions are pinned in web/js/package.json and web/js/package-lock.json. This script installs
them with `npm ci` in a temporary folder, copies each library's browser build and licence into
the vendor folder and writes MANIFEST.json (package, version, file, sha256). The copies are
committed, so a user never runs npm: the product serves them itself and works offline.

    python scripts/vendor_js.py           # install from npm and copy (needs npm and the registry)
    python scripts/vendor_js.py --check   # offline: the committed copies match manifest and pins
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "web" / "js"
VENDOR_DIR = ROOT / "web" / "static" / "web" / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.json"

# package → (file in the package, name served under static/web/vendor/)
BROWSER_BUILDS: dict[str, tuple[str, str]] = {
    "htmx.org": ("dist/htmx.min.js", "htmx.min.js"),
    "lightweight-charts": (
        "dist/lightweight-charts.standalone.production.js",
        "lightweight-charts.standalone.production.js",
    ),
    "chart.js": ("dist/chart.umd.min.js", "chart.umd.min.js"),
    "chartjs-chart-error-bars": ("build/index.umd.min.js", "chartjs-chart-error-bars.umd.min.js"),
}
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "license.md")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned_versions() -> dict[str, str]:
    return json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"]


def vendor() -> list[dict[str, str]]:
    """Install the pinned packages and copy their browser builds; returns the manifest entries."""
    if shutil.which("npm") is None:
        sys.exit("npm is not installed: install Node.js and npm, or keep the committed copies")
    entries = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PACKAGE_DIR / name, scratch)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=scratch, check=True
        )
        VENDOR_DIR.mkdir(parents=True, exist_ok=True)
        for package, (source, served) in BROWSER_BUILDS.items():
            package_root = Path(scratch) / "node_modules" / package
            version = json.loads((package_root / "package.json").read_text())["version"]
            shutil.copy(package_root / source, VENDOR_DIR / served)
            licence = next(
                (package_root / n for n in LICENSE_NAMES if (package_root / n).exists()), None
            )
            if licence is None:
                sys.exit(f"{package} {version} ships no licence file: refusing to vendor it")
            shutil.copy(licence, VENDOR_DIR / f"{package}.LICENSE")
            entries.append(
                {
                    "package": package,
                    "version": version,
                    "file": served,
                    "sha256": sha256(VENDOR_DIR / served),
                }
            )
    MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def check() -> list[str]:
    """What is wrong with the committed copies (empty when they match the pins and the manifest)."""
    problems = []
    entries = {entry["package"]: entry for entry in json.loads(MANIFEST.read_text())}
    for package, version in pinned_versions().items():
        entry = entries.get(package)
        if entry is None:
            problems.append(f"{package} is pinned but not vendored")
            continue
        if entry["version"] != version:
            problems.append(f"{package}: vendored {entry['version']}, pinned {version}")
        path = VENDOR_DIR / entry["file"]
        if not path.exists() or sha256(path) != entry["sha256"]:
            problems.append(
                f"{entry['file']} differs from what npm gave (run scripts/vendor_js.py)"
            )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed copies, offline")
    args = parser.parse_args()
    if args.check:
        problems = check()
        print("\n".join(problems) or "vendored libraries match their pins")
        sys.exit(1 if problems else 0)
    for entry in vendor():
        print(f"{entry['package']} {entry['version']} → web/static/web/vendor/{entry['file']}")


if __name__ == "__main__":
    main()

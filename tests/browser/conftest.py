"""Real-browser tests: Debian's chromium driven by Playwright for Python (its own browser download is not
reachable, so `executable_path` points at the system Chromium; .ci/install-system-deps.sh installs it),
and card markdown rendered by the sandbox's own markdown library (npm, installed here on first use)."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MARKDOWN_DIR = Path(__file__).resolve().parent / "markdown"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # nothing but this machine: a page can never reach out
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/install-system-deps.sh does it)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 720, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _install_markdown() -> None:
    """`npm ci` in tests/browser/markdown when node_modules is missing or older than the lock file."""
    lock = MARKDOWN_DIR / "package-lock.json"
    modules = MARKDOWN_DIR / "node_modules" / ".package-lock.json"
    with open(Path(tempfile.gettempdir()) / "posterior-knee-cds-markdown.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if modules.is_file() and modules.stat().st_mtime >= lock.stat().st_mtime:
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: the card height test renders markdown with the sandbox's library")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=MARKDOWN_DIR,
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {MARKDOWN_DIR}: {done.stderr[-2000:]}")


@pytest.fixture(scope="session")
def render_markdown() -> Any:
    """Markdown → HTML with react-markdown + remark-gfm + rehype-raw, as the sandbox renders a card."""
    _install_markdown()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed")

    def render(markdowns: list[str]) -> list[str]:
        done = subprocess.run([node, "render.mjs"], cwd=MARKDOWN_DIR, input=json.dumps(markdowns),
                              capture_output=True, text=True, timeout=120, check=True)
        return list(json.loads(done.stdout))

    return render

"""End-to-end fixtures: a real terminal (``run_terminal`` in standalone mode, as ``make run`` starts
it) in a subprocess, driven by Debian's Chromium through Playwright. Screenshots of every page a
test visits are saved under test-artifacts/e2e/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _standalone_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env["VAR_DIR"] = str(var_dir)
    return env


@pytest.fixture(scope="session")
def terminal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start a standalone terminal with the demo data; yield its base URL and the demo output."""
    var_dir = tmp_path_factory.mktemp("e2e-var")
    env = _standalone_env(var_dir)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    demo = subprocess.run(
        [*manage, "load_demo"], cwd=ROOT, env=env, check=True, timeout=300, capture_output=True, text=True
    )
    port = _free_port()
    log_path = var_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*manage, "run_terminal", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the terminal did not start:\n" + log_path.read_text())
                time.sleep(0.3)
        yield {"url": url, "demo_output": demo.stdout, "var_dir": var_dir}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"needs Chromium at {CHROMIUM} (make test installs Debian's chromium)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-IN")
    page = context.new_page()
    shots: list[str] = []

    def screenshot(name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{len(shots):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(str(path))

    page.screenshot_step = screenshot  # type: ignore[attr-defined]
    yield page
    if not shots:
        screenshot("final")
    context.close()

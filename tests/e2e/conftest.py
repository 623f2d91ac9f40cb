"""End-to-end fixtures: a real terminal (``run_terminal`` in standalone mode, as ``make run`` starts
it) in a subprocess, driven by Debian's Chromium through Playwright. Screenshots of every page a
test visits are saved under test-artifacts/e2e/."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _standalone_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env["VAR_DIR"] = str(var_dir)
    return env


@contextmanager
def served_terminal(
    var_dir: Path, *, port: int | None = None, env: dict[str, str] | None = None, commands: tuple[list[str], ...] = ()
) -> Iterator[dict]:
    """Migrate and load the demo data under ``var_dir``, run the further ``manage.py`` ``commands``,
    serve a standalone terminal (``run_terminal``: Daphne with Celery and the feed in-process) on
    ``port`` with the extra ``env``; yield its base URL,
    the demo output and ``env``, the environment a ``manage.py`` command needs to reach its database."""
    if not (ROOT / "static" / "vendor" / "VERSIONS").exists():
        pytest.fail("the browser libraries are missing: run `make vendor` (make test does it)")
    environ = {**_standalone_env(var_dir), **(env or {})}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=environ, check=True, timeout=300)
    demo = subprocess.run(
        [*manage, "load_demo"], cwd=ROOT, env=environ, check=True, timeout=300, capture_output=True, text=True
    )
    for command in commands:
        subprocess.run([*manage, *command], cwd=ROOT, env=environ, check=True, timeout=300, capture_output=True)
    port = port or free_port()
    log_path = var_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*manage, "run_terminal", "--port", str(port)],
            cwd=ROOT,
            env=environ,
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
        yield {"url": url, "demo_output": demo.stdout, "var_dir": var_dir, "env": environ, "log": log_path}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def terminal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start a standalone terminal with the demo data; yield its base URL and the demo output."""
    with served_terminal(tmp_path_factory.mktemp("e2e-var")) as served:
        yield served


@pytest.fixture(scope="package")
def browser():
    # Package scope: Playwright's sync API keeps an event loop running in the main thread while it is
    # open, and every later test that calls async_to_sync there would fail; it stops after the e2e tests.
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


# --- signing in with both factors -----------------------------------------------------------------
DEMO_LINE = re.compile(r"^\s+(\w+)\s+username:\s+(\S+)\s+TOTP secret:\s+([A-Z2-7]+)", re.M)


@dataclass
class DemoUser:
    role: str
    username: str
    password: str
    secret: str


def demo_users(output: str) -> dict[str, DemoUser]:
    """Parse load_demo's output into {role: DemoUser} (role in lower case: owner, admin, trader, viewer)."""
    password = re.search(r"password:\s*(\S+)", output).group(1)
    return {
        role.lower(): DemoUser(role.lower(), username, password, secret)
        for role, username, secret in DEMO_LINE.findall(output)
    }


_last_step: dict[str, int] = {}


def next_totp(user: DemoUser) -> str:
    """A code the server has not seen for this user: a TOTP code is accepted once per 30 s step
    (the device also accepts the next step), so consecutive sign-ins use consecutive steps."""
    from django_otp.oath import TOTP

    key = base64.b32decode(user.secret)
    while True:
        totp = TOTP(key)
        step = max(totp.t(), _last_step.get(user.username, -1) + 1)
        if step <= totp.t() + 1:
            _last_step[user.username] = step
            totp.drift = step - totp.t()
            return f"{totp.token():06d}"
        time.sleep(1)


_signed_in: dict[tuple[str, str], list] = {}  # (server, username) -> the session's cookies


def sign_in(page, base_url: str, user: DemoUser, *, fresh: bool = False) -> None:
    """Sign in through the real pages: password, then the one-time code.

    A TOTP code is good once per 30-second step, so every sign-in of one user after the first waits up
    to 30 s for a new code. The first sign-in of each user on a server is therefore kept: later calls
    give the page's context that session's cookies and land on the dashboard, and sign in through the
    pages again only when the session has ended (signed out, revoked). ``fresh=True`` always signs in."""
    from playwright.sync_api import expect

    key = (base_url, user.username)
    if not fresh and (cookies := _signed_in.get(key)):
        page.context.add_cookies(cookies)
        page.goto(base_url + "/")
        if page.get_by_role("button", name="Sign out").count():
            return
        page.context.clear_cookies()
    page.goto(base_url + "/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("One-time code or backup code").fill(next_totp(user))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_label("One-time code or backup code")).to_have_count(0)
    _signed_in[key] = page.context.cookies()

"""The terminal served for real on loopback, for tests about serving: headers, client addresses,
sockets. ``serve`` migrates a fresh SQLite database under ``var`` (so it runs with or without the
services) and starts gunicorn's uvicorn workers (the full stack's web tier) or ``run_terminal
--server uvicorn|daphne``, without the in-process Celery and feed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("gunicorn", "uvicorn", "daphne")

# What DJANGO_ENV=production demands at start-up, with throwaway values (docs: README configuration).
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "served-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "BROKER_ENCRYPTION_KEYS": "k1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
    "AUDIT_SIGNING_KEY": "SiBx0GQr1OD0/3prOR0dvcN6h3C3UO/jev3Kfjk5juE=",
    "AUDIT_HMAC_KEYS": "h1:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command(server: str, port: int) -> list[str]:
    if server == "gunicorn":
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        return [
            gunicorn,
            "--config",
            "config/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "config.asgi:application",
        ]
    manage = [sys.executable, "manage.py", "run_terminal", "--server", server, "--port", str(port)]
    return [*manage, "--no-feed", "--no-celery"]


@contextmanager
def serve(var: Path, *, server: str = "gunicorn", env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the terminal with its state under ``var`` and the extra ``env``; yield its base URL."""
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    environ.update({"VAR_DIR": str(var), "WEB_CONCURRENCY": "1", "TRUSTED_PROXIES": "", **(env or {})})
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=environ, check=True, timeout=300)
    if environ.get("DJANGO_ENV") == "production":  # hashed static files, as the image builds them
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=environ, check=True, timeout=300)
    port = _free_port()
    log_path = var / f"{server}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            _command(server, port), cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (an unhealthy dependency is not this module's concern)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None):
    """Return (status, headers, body) of one request, whatever its status."""
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()

"""The processes of the worker and Redis drills: a redis-server of the drill's own, the terminal served
by gunicorn on loopback, and real Celery workers (``celery --app config worker``), each killed or
stopped by its process id only.

- ``RedisServer``: ``redis-server --port <free> --save '' --appendonly no`` in a temporary directory,
  killed with SIGKILL and started again on the same port. The shared Redis (6379) is never touched.
- ``served``: gunicorn with the project's config (one uvicorn worker) over the test database, with the
  ``REDIS_URL`` (and any other environment) of the drill's choosing.
- ``Worker``: ``celery --app config worker`` on the given queues in a session of its own, so a kill -9
  of its process group is the death of the whole worker (a pod or container killed: the main process
  and its pool children at once). ``tests.drills.worker_hooks`` is loaded with ``--include``: it only
  shortens the redelivery delay and, on request, pauses a task at a named point (see that module).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], *, seconds: float, what: str, step: float = 0.1) -> float:
    """Wait until ``condition()`` is truthy; return the seconds it took. Fails (AssertionError) after
    ``seconds``: a bound only a hang exceeds."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except Exception:
            pass
        if time.monotonic() - started > seconds:
            raise AssertionError(f"no {what} after {seconds:.0f} s")
        time.sleep(step)


def test_database_url() -> str:
    """DATABASE_URL naming the database the test runs on (pytest-django's test database)."""
    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))


class RedisServer:
    """A redis-server of the drill's own, without persistence: a restart starts it empty."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = directory / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ping, seconds=20, what=f"redis-server on port {self.port}", step=0.05)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.3, socket_timeout=0.3).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server dies at once, and with it every key (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def client(self, db: int = 0):
        import redis

        return redis.Redis(port=self.port, db=db, socket_connect_timeout=1, socket_timeout=2)


@contextmanager
def own_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def drill_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a drill's served terminal and workers: the test database, the drill's Redis."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_ENV", "PYTEST_CURRENT_TEST"}}
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "0",
            "WEB_CONCURRENCY": "1",
            "TRUSTED_PROXIES": "",
            "HEALTH_QUEUE_AGE_SECONDS": "86400",
            "DATABASE_POOL_SIZE": "8",
            **extra,
        }
    )
    return env


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve the terminal with gunicorn (the production web command) on loopback; yield its URL and process."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "--config",
        "config/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "config.asgi:application",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2).close()
        except urllib.error.HTTPError:
            return True  # it answers; an unhealthy dependency is the drill's own business
        except OSError:
            return False
        return True

    try:
        try:
            wait_for(answers, seconds=90, what="served terminal", step=0.2)
        except AssertionError:
            raise AssertionError(f"gunicorn did not answer:\n{log.read_text()[-3000:]}") from None
        yield url, process
    finally:
        stop_group(process, signal.SIGTERM)


def stop_group(process: subprocess.Popen, sig: int = signal.SIGKILL, wait: float = 30) -> None:
    """Signal the process group ``process`` leads (started in a session of its own) and wait for it."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    # A killed main process leaves its pool children to die on their own: make sure they are gone.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class Worker:
    """One ``celery --app config worker`` process (its pool children in its process group)."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *, queues: str = "orders,default") -> None:
        self.name = name
        self.log = log_dir / f"worker-{name}.log"
        command = [
            str(BIN / "celery"),
            "--app",
            "config",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            "2",
            "--hostname",
            f"drill-{name}@%h",
            "--include",
            "tests.drills.worker_hooks",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, seconds: float = 90) -> float:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.text()[-3000:]}")
            return " ready." in self.text()

        try:
            return wait_for(ready, seconds=seconds, what=f"worker {self.name} ready", step=0.2)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.text()[-3000:]}") from None

    def kill(self) -> None:
        """kill -9 of the whole worker: its main process and its pool children."""
        stop_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        stop_group(self.process, signal.SIGTERM, wait=20)

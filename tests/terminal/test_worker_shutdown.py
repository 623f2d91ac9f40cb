"""A web worker told to stop pushes the order changes it still holds before it exits (infra.lifespan)."""

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync

from config.serving import UVICORN_OPTIONS
from infra import lifespan
from orders import push

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sender(monkeypatch):
    """This process's push thread, with a ``_send`` that records each batch after ``sender.delay``
    seconds, or once ``sender.release`` is set when ``sender.hold`` is."""
    instance = push._Sender()
    instance.sent, instance.delay, instance.hold, instance.release = [], 0.0, False, threading.Event()

    def send(batch):
        if instance.hold:
            instance.release.wait(10)
        time.sleep(instance.delay)
        instance.sent.extend(batch)

    instance._send = send
    monkeypatch.setattr(push, "_sender_instance", instance)
    yield instance
    instance.release.set()
    instance.flush(10)


def _run_lifespan() -> list[dict]:
    """Start and stop ``infra.lifespan.application`` as uvicorn does; return what it answered and,
    beside the shutdown answer, the changes sent by then."""

    async def scenario() -> list[dict]:
        inbox: asyncio.Queue = asyncio.Queue()
        answers: list[dict] = []

        async def send(message: dict) -> None:
            answers.append({**message, "sent": list(push._sender_instance.sent)})

        for message in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
            inbox.put_nowait(message)
        await asyncio.wait_for(lifespan.application({"type": "lifespan"}, inbox.get, send), timeout=30)
        return answers

    return async_to_sync(scenario)()


def test_the_web_process_speaks_the_lifespan_protocol():
    assert UVICORN_OPTIONS["lifespan"] == "on"
    from config.asgi import application

    assert application.application_mapping["lifespan"] is lifespan.application


def test_the_requests_wait_and_the_drain_together_fit_in_gunicorns_graceful_timeout():
    import runpy

    config = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert UVICORN_OPTIONS["timeout_graceful_shutdown"] + lifespan.DRAIN_SECONDS < config["graceful_timeout"]


def test_a_stopping_worker_pushes_the_changes_still_queued_before_it_says_it_is_done(sender):
    sender.delay = 0.3  # still sending when the shutdown arrives
    sender.submit("order 1")
    sender.submit("order 2", "trade 1")
    answers = _run_lifespan()
    assert [answer["type"] for answer in answers] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert answers[1]["sent"] == [("order 1", None, {}), ("order 2", "trade 1", {})]


def test_a_drain_that_outlasts_its_time_is_logged_and_the_worker_stops_anyway(sender, monkeypatch, caplog):
    monkeypatch.setattr(lifespan, "DRAIN_SECONDS", 0.2)
    sender.hold = True
    sender.submit("order 1")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="orders.push"):
        answers = _run_lifespan()
    assert time.monotonic() - started < 5
    assert answers[-1]["type"] == "lifespan.shutdown.complete" and answers[-1]["sent"] == []
    assert "still queued after 0.2 s of shutdown" in caplog.text


def test_a_process_that_never_pushed_stops_at_once(monkeypatch):
    monkeypatch.setattr(push, "_sender_instance", None)
    assert lifespan.drain(timeout=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_stops_its_worker_on_sigterm_through_the_lifespan_shutdown(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(VAR_DIR=str(tmp_path / "var"), WEB_CONCURRENCY="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    # The web command of the Kubernetes manifests and the image, with one worker.
    command = [str(Path(sys.executable).with_name("gunicorn")), "--config", "config/gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{port}", "config.asgi:application"]
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert web.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        web.send_signal(signal.SIGTERM)  # to the master, as Kubernetes does: it stops its workers with SIGTERM
        assert web.wait(timeout=20) == 0, log_path.read_text()
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
    output = log_path.read_text()
    assert "Application startup complete." in output
    assert "Waiting for application shutdown." in output and "Application shutdown complete." in output


@pytest.mark.parametrize("signal_name", ["worker_process_shutdown", "worker_shutdown"])
def test_a_stopping_celery_worker_pushes_the_changes_its_tasks_queued(sender, signal_name):
    from celery import signals

    import config.celery  # noqa: F401  (connects the worker's receivers)

    sender.delay = 0.3  # still sending when the worker stops
    sender.submit("order 1", "trade 1")
    getattr(signals, signal_name).send(sender=None, pid=os.getpid(), exitcode=0)
    assert sender.sent == [("order 1", "trade 1", {})]

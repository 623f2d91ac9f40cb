"""/metrics on web pods and on Celery workers."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from config.celery import QUEUES
from config.celery import app as celery_app
from infra.consumers import UserConsumer

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return _samples(response.content.decode())


@pytest.mark.django_db
def test_metrics_export_database_latency_and_one_health_gauge_per_check(client):
    samples = _scrape(client)
    assert samples[("terminal_db_latency_seconds", ())] > 0
    assert samples[("terminal_health_check_ok", (("check", "database"),))] == 1.0
    assert samples[("terminal_health_check_ok", (("check", "celery"),))] == 1.0
    for queue in QUEUES:
        assert ("terminal_celery_queue_depth", (("queue", queue),)) in samples


@pytest.mark.django_db
def test_a_failing_check_is_exported_as_zero_rather_than_breaking_the_scrape(client, settings):
    settings.HEALTH_DB_LATENCY_MS = 0
    samples = _scrape(client)
    assert samples[("terminal_health_check_ok", (("check", "database"),))] == 0.0


@pytest.mark.redis
@pytest.mark.django_db
def test_metrics_export_queue_depth_and_the_age_of_the_oldest_task_at_scrape_time(client, settings):
    queue = "reports"
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.delete(queue)
    try:
        celery_app.send_task("audit.tasks.nothing", queue=queue)
        celery_app.send_task("audit.tasks.nothing", queue=queue)
        time.sleep(0.05)
        samples = _scrape(client)
        assert samples[("terminal_celery_queue_depth", (("queue", queue),))] == 2
        assert samples[("terminal_celery_queue_oldest_task_age_seconds", (("queue", queue),))] >= 0.05
        conn.delete(queue)
        samples = _scrape(client)
        assert samples[("terminal_celery_queue_depth", (("queue", queue),))] == 0
        assert samples[("terminal_celery_queue_oldest_task_age_seconds", (("queue", queue),))] == 0
    finally:
        conn.delete(queue)


@pytest.mark.django_db(transaction=True)
def test_the_websocket_client_gauge_follows_user_sockets_opening_and_closing(client):
    alice = User.objects.create_user("alice", password="x-long-password-1")

    def gauge() -> float:
        return _scrape(client).get(("terminal_ws_clients", (("socket", "user"),)), 0.0)

    before = gauge()

    async def scenario():
        sockets = []
        for _ in range(2):
            communicator = WebsocketCommunicator(UserConsumer.as_asgi(), "/ws/user/")
            communicator.scope["user"] = alice
            assert (await communicator.connect())[0]
            sockets.append(communicator)
        assert await sync_to_async(gauge)() == before + 2
        await sockets[0].disconnect()
        assert await sync_to_async(gauge)() == before + 1
        await sockets[1].disconnect()
        assert await sync_to_async(gauge)() == before

    async_to_sync(scenario)()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _metrics_on_port(port: int) -> dict[tuple[str, tuple], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return _samples(response.read().decode())
    except (urllib.error.URLError, ConnectionError):
        return None


@pytest.mark.redis
def test_a_worker_serves_its_own_metrics_with_task_outcomes_latency_and_queue_wait(settings, tmp_path):
    port = _free_port()
    queue = "default"
    redis.Redis.from_url(settings.REDIS_URL).delete(queue)
    env = {**os.environ, "METRICS_PORT": str(port), "REDIS_URL": settings.REDIS_URL}
    # The worker command the Kubernetes manifests run, on one queue.
    command = [sys.executable, "-m", "celery", "--app", "config", "worker", "--pool", "threads"]
    command += ["--concurrency", "2", "--queues", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    task = "infra.tasks.beat_heartbeat"
    try:
        celery_app.send_task(task, queue=queue)
        celery_app.send_task(task, args=[1], queue=queue)  # an unexpected argument: the task fails
        outcome = {
            kind: ("terminal_celery_tasks_total", (("outcome", kind), ("queue", queue), ("task", task)))
            for kind in ("success", "failure")
        }
        deadline, samples = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            samples = _metrics_on_port(port)
            if samples and samples.get(outcome["success"]) and samples.get(outcome["failure"]):
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.25)
        assert samples, f"no metrics on port {port}:\n{(tmp_path / 'worker.log').read_text()}"
        assert samples[outcome["success"]] == 1 and samples[outcome["failure"]] == 1
        assert samples[("terminal_celery_task_duration_seconds_count", (("queue", queue), ("task", task)))] == 2
        assert samples[("terminal_celery_task_queue_wait_seconds_count", (("queue", queue),))] == 2
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def test_the_web_process_serves_its_metrics_on_the_metrics_port_beside_the_public_one(tmp_path):
    web_port, metrics_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(METRICS_PORT=str(metrics_port), VAR_DIR=str(tmp_path / "var"))
    env.update(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    # The web command of the Kubernetes manifests and the image: two worker processes, one port for both.
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--config",
        "config/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{web_port}",
        "config.asgi:application",
    ]
    log = (tmp_path / "web.log").open("w")
    web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, samples = time.monotonic() + 60, None
        while time.monotonic() < deadline and not samples:
            assert web.poll() is None, (tmp_path / "web.log").read_text()
            samples = _metrics_on_port(metrics_port)
            time.sleep(0.25)
        assert samples, (tmp_path / "web.log").read_text()
        assert samples[("terminal_health_check_ok", (("check", "database"),))] == 1.0
        assert ("terminal_celery_queue_depth", (("queue", "orders"),)) in samples
        # Requests served by either worker are counted once, in the sum the port serves.
        for _ in range(8):
            urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/health", timeout=10).close()
        samples = _metrics_on_port(metrics_port)
        assert samples[("django_http_requests_total_by_method_total", (("method", "GET"),))] >= 8
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


@pytest.mark.django_db
def test_the_public_port_hides_metrics_where_a_metrics_port_serves_them(client, settings):
    settings.METRICS_PORT = 9100
    assert client.get("/metrics").status_code == 404
    settings.METRICS_PORT = 0
    assert client.get("/metrics").status_code == 200

"""The kill -9 drill: a Celery worker killed after it placed a deployment's order and before it
acknowledged the task; the task is redelivered to a new worker, and exactly one order exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from orders.models import Order
from strategies.models import Deployment, StrategyIntent
from tests.strategies.runtime_world import BAR_TS, ROOT, _fresh_runtime, deploy, store_bar

__all__ = ["_fresh_runtime"]
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]


def _wait(condition, *, seconds: float, what: str, process: subprocess.Popen | None = None, log=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited while waiting for {what}: {log.read_text() if log else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {seconds} s: {log.read_text()[-3000:] if log else ''}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_placing_has_its_task_redelivered_and_one_order_exists(world, market, tmp_path):
    deployment = deploy(world)
    store_bar(world.equity, BAR_TS, "1000")
    run_id = uuid.uuid4().hex[:12]
    url = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}")),
        "DRILL_QUEUE": f"strategies-drill-{run_id}",
        "DRILL_PREFIX": f"drill-{run_id}:",
        "METRICS_PORT": "0",
    }
    drill = [sys.executable, "-m", "tests.strategies.drill_worker"]
    workers: list[subprocess.Popen] = []

    def start(name: str, **extra: str) -> tuple[subprocess.Popen, object]:
        log = tmp_path / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [*drill, "worker"], cwd=ROOT, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT
            )
        workers.append(process)
        return process, log

    try:
        pause = tmp_path / "pause"
        pause.mkdir()
        first, first_log = start("first", DRILL_PAUSE_DIR=str(pause))
        subprocess.run([*drill, "send", str(deployment.pk), BAR_TS.isoformat()], cwd=ROOT, env=env, check=True)
        _wait((pause / "placed").exists, seconds=90, what="order placed", process=first, log=first_log)
        assert Order.objects.count() == 1
        assert Deployment.objects.get(pk=deployment.pk).last_bar_ts is None  # the bar is not written yet
        os.kill(first.pid, signal.SIGKILL)  # mid-task: placed, not acknowledged
        first.wait(10)

        second, second_log = start("second")
        _wait(
            lambda: Deployment.objects.get(pk=deployment.pk).last_bar_ts == BAR_TS,
            seconds=90,
            what="redelivered evaluation",
            process=second,
            log=second_log,
        )
        assert "evaluate_deployment" in second_log.read_text()
        assert Order.objects.count() == 1
        assert StrategyIntent.objects.filter(deployment=deployment).count() == 1
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{env['DRILL_PREFIX']}*"):
            client.delete(key)

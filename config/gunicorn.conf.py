"""gunicorn settings for the web tier of the full stack: several uvicorn worker processes serving
``config.asgi`` (HTTP and websockets), each with uvloop, httptools and the options of
``config/serving.py`` (permessage-deflate off).

    gunicorn --config config/gunicorn.conf.py --bind 0.0.0.0:8000 config.asgi:application

One Python process runs one request's Python at a time (the GIL), so the web tier scales with
processes. Every process holds its own copy of the per-process state, and each is correct with N of
them: the Redis channel layer carries websocket pushes between processes; every process runs its own
tick hub, fed by Redis pub/sub; RMS limits are cached per process behind a version in Redis; the
orders-per-second governor counts in Redis. Standalone mode (``manage.py run_terminal``) stays one
Daphne process because its in-memory channel layer and Celery only reach that process.

Environment:
- ``WEB_CONCURRENCY``: worker processes (default: twice the CPUs this process may run on). Set it
  where the CPU count is the node's, not the container's (Kubernetes).
- ``TRUSTED_PROXIES``: read by the application, not here: the workers apply no proxy headers
  (``config/serving.py``), and ``core.client_ip`` reads X-Forwarded-* from those proxies only.
- ``PROMETHEUS_MULTIPROC_DIR``: where every worker writes its metric samples (default: a fresh
  temporary directory). The worker that binds ``METRICS_PORT`` serves the sum of all of them
  (``infra.metrics.start_metrics_server``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.env import env_int  # after the path: gunicorn loads this file by path

worker_class = "config.serving.UvicornWorker"  # uvicorn with the options of config/serving.py
workers = env_int("WEB_CONCURRENCY", 2 * len(os.sched_getaffinity(0)), minimum=1, maximum=64)
# Requests that take longer than this are a bug or a stuck dependency: the worker is replaced.
timeout = 60
# Kubernetes gives the pod 60 s (terminationGracePeriodSeconds). A worker told to stop (SIGTERM)
# finishes its requests and sockets (uvicorn's timeout_graceful_shutdown, config/serving.py), then
# pushes the order changes still queued (infra.lifespan.DRAIN_SECONDS) and exits; one still
# running after graceful_timeout is killed.
graceful_timeout = 30
keepalive = 75  # longer than nginx's upstream keepalive, so nginx closes idle connections first
accesslog = None  # requests are logged by the application (one JSON line each, with the request id)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()


def on_starting(server) -> None:
    """Give the workers a clean directory for their metric samples (pids of a past run may repeat)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="terminal-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by every worker forked from here


def child_exit(server, worker) -> None:
    """Drop the samples of live-only gauges (open websockets) of a worker that has gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)

"""gunicorn settings for bench/ticks.py: each worker serves its Prometheus registry on its own port.

``BENCH_METRICS_PORTS`` lists one port per worker; worker N (gunicorn's age, from 1) takes the Nth as
``METRICS_PORT`` before it imports the application, so the benchmark can add up every worker's
counters. A worker replaced during the run gets none.
"""

import os

loglevel = "warning"


def post_fork(server, worker):
    ports = [port for port in os.environ.get("BENCH_METRICS_PORTS", "").split(",") if port]
    if 0 < worker.age <= len(ports):
        os.environ["METRICS_PORT"] = ports[worker.age - 1]
    else:
        os.environ["METRICS_PORT"] = "0"

"""Drill: a blue/green switch under load drops no request.

Two web tiers, blue and green (each gunicorn with uvicorn workers, as deploy/k8s/base/web.yaml runs
``web-blue`` and ``web-green``), behind a real nginx on loopback configured as deploy/nginx/terminal.conf
(upstream with keepalive, HTTP/1.1 to the upstream). Clients send orders through nginx with an
``Idempotency-Key`` all along. Then, as ``deploy/k8s/bluegreen deploy`` does in a cluster: green is
started and answers its readiness check, nginx's upstream is switched from blue to green (the new
configuration, then SIGHUP: new nginx workers take new requests, the old ones finish theirs), and
once no request reaches blue any more, blue is stopped with SIGTERM (its in-flight requests
complete, its websockets close with 1012, and the old nginx workers, left holding only those, exit).
Every request sent is answered: none fails, none needed a retry, and the ledger finds every order
once. A trader's page socket, through nginx, moves from blue to green (it reconnects with its last
sequence number) and ends showing every order as the database holds it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.commands import require_tool
from tests.drills import webtier
from tests.drills.ledger import Ledger, orders_for_keys, paper_counts_by_tag

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(240),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 4
NGINX_SITE = webtier.ROOT / "deploy" / "nginx" / "terminal.conf"


def _site(edge_port: int, upstream_port: int, access_log: Path) -> str:
    """deploy/nginx/terminal.conf on loopback, pointing at one colour, logging each request's upstream."""
    site = NGINX_SITE.read_text()
    for old, new in (
        ("server web:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 8080;", f"listen 127.0.0.1:{edge_port};"),
        ("access_log /var/log/nginx/access.log terminal_noquery;", f"access_log {access_log} switch;"),
    ):
        assert old in site, f"deploy/nginx/terminal.conf no longer contains {old!r}; update this drill"
        site = site.replace(old, new)
    return "log_format switch '$msec $upstream_addr $status $request_method $uri';\n" + site


def _nginx_conf(prefix: Path) -> Path:
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""
    )
    return conf


def _nginx_workers(pid: int) -> list[tuple[int, str]]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = []
    for child in children:
        try:
            found.append((int(child), Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue
    return found


def _served_by(access_log: Path, port: int) -> list[float]:
    """When (nginx's $msec) each request nginx sent to the upstream on ``port`` was answered."""
    times = []
    for line in access_log.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].endswith(f":{port}"):
            times.append(float(fields[0]))
    return times


def _quiet(access_log: Path, blue: int, green: int, seconds: float) -> bool:
    """Green answers, and blue has answered nothing for ``seconds``."""
    served_green, served_blue = _served_by(access_log, green), _served_by(access_log, blue)
    return bool(served_green) and (not served_blue or time.time() - max(served_blue) > seconds)


def _settle(page: webtier.UserSocket, truth: dict[int, str], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while page.view() != truth:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_switching_from_blue_to_green_under_load_drops_no_request(tmp_path):
    nginx = require_tool("nginx")
    sessions, bodies, _users = webtier.world(CLIENTS, accounts_per_client=2)
    blue = webtier.Web("blue", tmp_path, workers=1)
    green = None
    edge = None
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    access_log = prefix / "access.log"
    edge_port = webtier.free_port()
    ledger = Ledger("blue/green switch")
    try:
        blue.wait_ready()
        (prefix / "site.conf").write_text(_site(edge_port, blue.port, access_log))
        conf = _nginx_conf(prefix)
        command = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        edge = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        webtier.wait_answering(f"http://127.0.0.1:{edge_port}", edge, 20, prefix / "error.log")
        # Trader 0's page, through nginx: its socket is on blue until blue stops, then reconnects to green.
        page = webtier.UserSocket(f"http://127.0.0.1:{edge_port}", sessions[0][0]).start()
        clients = [webtier.OrderClient(edge_port, sessions[i], bodies[i], ledger) for i in range(CLIENTS)]
        with webtier.running(clients):
            time.sleep(1.5)
            # The release: green starts and answers its readiness check (bluegreen's smoke test).
            green = webtier.Web("green", tmp_path, workers=1)
            green.wait_ready()
            time.sleep(1.0)
            # The switch: the upstream now names green; nginx reloads on SIGHUP.
            (prefix / "site.conf").write_text(_site(edge_port, green.port, access_log))
            checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stderr
            old_workers = {pid for pid, _ in _nginx_workers(edge.pid)}
            switch_wall = time.time()
            switched_at = time.monotonic()
            edge.send_signal(signal.SIGHUP)
            # The old nginx workers finish the requests they hold (to blue); new ones go to green. Their
            # websockets stay on blue until blue closes them.
            deadline = time.monotonic() + 30
            while not _quiet(access_log, blue.port, green.port, 0.5):
                assert time.monotonic() < deadline, "requests still reach blue"
                time.sleep(0.05)
            drained = time.monotonic() - switched_at
            # Only then is blue told to stop, as Kubernetes does once its endpoints are gone: its requests
            # complete, its sockets close with 1012 and the pages reconnect, through nginx, to green.
            blue_exit = blue.stop()
            while old_workers & {pid for pid, _ in _nginx_workers(edge.pid)}:
                assert time.monotonic() < deadline, "the old nginx workers did not exit"
                time.sleep(0.05)
            old_gone = time.monotonic() - switched_at
            time.sleep(1.5)
        truth = webtier.book_truth(_users[0])
        settled = _settle(page, truth)
        page.stop()
        first_green = min((t for t in _served_by(access_log, green.port) if t >= switch_wall), default=None)
        last_blue = max(_served_by(access_log, blue.port), default=None)
        keys = list(ledger.sent)
        rows = orders_for_keys(keys)
        tally = ledger.tally(rows, paper_counts_by_tag([row.broker_tag for row in rows]))
        requests = sum(client.requests for client in clients)
        answered = sum(client.answered for client in clients)
        errors = [error for client in clients for error in client.errors]
        stale = sum(client.stale for client in clients)
        by_blue, by_green = len(_served_by(access_log, blue.port)), len(_served_by(access_log, green.port))
        switch = "none" if first_green is None else f"{first_green - switch_wall:.3f} s"
        lines = [
            tally.line(),
            f"blue/green switch: requests sent {requests}, answered {answered}, failed {len(errors)}; "
            f"served by blue {by_blue}, by green {by_green}; sent again on a new connection after nginx closed "
            f"an idle kept-alive one {stale}",
            f"blue/green switch: first answer from green {switch} after SIGHUP; blue quiet after {drained:.2f} s, "
            f"old nginx workers gone after {old_gone:.2f} s; last answer from blue "
            f"{0.0 if last_blue is None else last_blue - switch_wall:+.3f} s; blue stopped by SIGTERM with exit "
            f"code {blue_exit}",
            f"blue/green switch: page socket reconnects {page.connects - 1}; page rows {len(page.view())}, "
            f"database {len(truth)}, matching: {settled}",
        ]
        webtier.report("bluegreen", lines)
        tally.assert_whole()
        assert not errors, f"{lines}\n{errors[:10]}"
        assert requests == answered and first_green is not None, lines
        assert blue_exit == 0, blue.log()[-3000:]
        assert page.connects > 1 and settled, f"page {page.view()} != database {truth}"
    finally:
        if edge is not None and edge.poll() is None:
            edge.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                edge.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(edge.pid, signal.SIGKILL)
                edge.wait()
        for web in (green, blue):
            if web is not None:
                web.stop()

"""Tick fan-out benchmark: the terminal's /ws/ticks/ against a bare broadcast server, same stack, same run.

    python bench/ticks.py                      # the target: 2,000 ticks/s, 500 instruments,
                                               # 1,000 clients x 20 instruments, 60 s
    python bench/ticks.py --clients 100 --duration 15     # a quick run
    python bench/ticks.py --duration 300       # memory over five minutes

Three processes over loopback: this one (set-up and measurement), the server (``manage.py run_terminal``
in standalone mode: Daphne, the simulator at ``--rate`` over ``--instruments`` instruments, the tick hub)
and the clients (the ``websockets`` package, all sockets in one asyncio process, signed in with a
session cookie, each subscribed to ``--subs`` random instruments in JSON format). Latency is tick
timestamp to client receipt (one machine, one clock), so it includes the conflation frame wait.
Then the same clients against bench/bare_server.py on Daphne sending the same number of updates per
frame without any terminal code. Prints ticks/s ingested, updates/s delivered, p50/p99 latency, server
RSS at start and end, and terminal/bare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --- clients (run in their own process) ------------------------------------------------------------
async def _client(url, cookie, port, instruments, duration_end, samples, counts, ready, start_event):
    import websockets

    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(url, additional_headers=headers, max_queue=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "instruments": instruments}))
        ready.append(1)
        while time.time() < duration_end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(duration_end - time.time(), 0.01))
            except TimeoutError:
                break
            now = time.time() * 1000
            message = json.loads(raw)
            if message.get("type") != "quotes" or not start_event.is_set():
                continue
            quotes = message["quotes"]
            counts[0] += len(quotes)
            counts[1] += 1
            for quote in quotes:
                samples.append(now - quote["ts"])


async def _run_clients(args) -> None:
    rng = random.Random(args.seed)
    ids = [int(i) for i in args.ids.split(",")]
    samples: array = array("d")
    counts = [0, 0]  # updates, frames
    ready: list[int] = []
    start_event = asyncio.Event()
    warm_end = time.time() + args.connect_timeout
    end = warm_end + args.duration + 5
    url = f"ws://127.0.0.1:{args.port}/ws/ticks/?format=json"
    tasks = []
    # Connect in waves, each waiting for the previous one's sockets to be accepted: Daphne drops a
    # handshake the application has not accepted within 5 s, and a thousand at once would queue the
    # session look-ups past that.
    for _ in range(args.clients):
        subscription = rng.sample(ids, min(args.subs, len(ids)))
        tasks.append(
            asyncio.create_task(
                _client(url, args.cookie, args.port, subscription, end, samples, counts, ready, start_event)
            )
        )
        if len(tasks) % args.wave == 0 or len(tasks) == args.clients:
            wave_deadline = time.time() + 30
            while time.time() < min(wave_deadline, warm_end) and len(ready) + sum(1 for t in tasks if t.done()) < len(
                tasks
            ):
                await asyncio.sleep(0.05)
    failures = [t.exception() for t in tasks if t.done() and t.exception() is not None]
    if failures:
        print(f"{len(failures)} clients failed to connect, e.g. {failures[0]!r}", file=sys.stderr, flush=True)
    print(json.dumps({"event": "connected", "clients": len(ready)}), flush=True)
    await asyncio.sleep(2)  # settle
    start_event.set()
    started = time.time()
    await asyncio.sleep(args.duration)
    elapsed = time.time() - started
    updates, frames = counts
    ordered = sorted(samples)
    result = {
        "event": "done",
        "clients": len(ready),
        "elapsed": elapsed,
        "updates_per_s": updates / elapsed,
        "frames_per_s": frames / elapsed,
        "p50_ms": ordered[len(ordered) // 2] if ordered else None,
        "p99_ms": ordered[int(len(ordered) * 0.99)] if ordered else None,
        "max_ms": ordered[-1] if ordered else None,
        "errors": sum(1 for t in tasks if t.done() and t.exception() is not None),
    }
    print(json.dumps(result), flush=True)
    os._exit(0)  # closing a thousand sockets politely takes longer than the measurement is worth


# --- orchestration ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def _histogram(port: int, name: str) -> dict[str, float]:
    """Return the cumulative bucket counts of a histogram, by upper bound."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode()
    buckets = {}
    for line in body.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="')[1].split('"')[0]
            buckets[bound] = float(line.split()[-1])
    return buckets


def _wait_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on {port} did not answer within {timeout} s")


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def _setup(env: dict, instruments: int) -> tuple[str, list[int]]:
    """Migrate a fresh standalone database, load the sample master, keep ``instruments`` active (spot,
    futures and options alike), and sign a user in. Returns (session cookie, active instrument ids)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "load_instruments", "--sample", "--no-progress"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    code = f"""
import django, json
django.setup()
from django.test import Client
from accounts.models import User
from marketdata.models import Instrument
ids = list(Instrument.objects.order_by("pk").values_list("pk", flat=True)[:{instruments}])
Instrument.objects.exclude(pk__in=ids).update(is_active=False)
user, _ = User.objects.get_or_create(username="bench")
client = Client()
client.force_login(user)
print(json.dumps({{"cookie": client.cookies["sessionid"].value, "ids": ids}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "terminal.settings"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["cookie"], data["ids"]


def _drive(server_cmd, env, args, cookie, ids, *, metrics: bool, feed_cmd=None, feed_port=None) -> dict:
    port = int(server_cmd[server_cmd.index("--port") + 1]) if "--port" in server_cmd else args._bare_port
    server = subprocess.Popen(server_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    feed = None
    if feed_cmd:
        feed = subprocess.Popen(feed_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    ticks_port = feed_port or port
    try:
        if metrics:
            _wait_http(port, "/api/health")
        else:
            _wait_port(port)
        if feed_port:
            _wait_http(feed_port, "/metrics")
        clients = subprocess.Popen(
            [sys.executable, __file__, "--role", "clients", "--port", str(port), "--cookie", cookie,
             "--ids", ",".join(map(str, ids)), "--clients", str(args.clients), "--subs", str(args.subs),
             "--duration", str(args.duration), "--seed", str(args.seed), "--wave", str(args.wave),
             "--connect-timeout", str(args.connect_timeout)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        connected = json.loads(clients.stdout.readline())
        time.sleep(2)
        rss_start = _rss_mb(server.pid)
        ticks_start = _metric(ticks_port, "terminal_ticks_ingested_total") if metrics else 0.0
        dropped_start = _metric(port, "terminal_conflation_dropped_total") if metrics else 0.0
        t0 = time.monotonic()
        rss_max = rss_start
        result = None
        while result is None:
            line = clients.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if message.get("event") == "done":
                result = message
            rss_max = max(rss_max, _rss_mb(server.pid))
        elapsed = time.monotonic() - t0
        rss_end = _rss_mb(server.pid)
        if metrics:
            result["server_lag"] = _histogram(port, "terminal_fanout_lag_seconds")
            result["ticks_per_s"] = (_metric(ticks_port, "terminal_ticks_ingested_total") - ticks_start) / elapsed
            result["dropped_per_s"] = (_metric(port, "terminal_conflation_dropped_total") - dropped_start) / elapsed
        result.update(connected=connected["clients"], rss_start_mb=rss_start, rss_end_mb=rss_end, rss_max_mb=rss_max)
        clients.wait(timeout=30)
        return result
    finally:
        for process in (feed, server):
            if process is None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=("bench", "clients"), default="bench")
    parser.add_argument("--rate", type=int, default=2000, help="ticks per second from the feed")
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--subs", type=int, default=20, help="instruments per client")
    parser.add_argument("--duration", type=float, default=60, help="seconds measured per server")
    parser.add_argument("--frame-ms", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connect-timeout", type=float, default=300)
    parser.add_argument("--wave", type=int, default=50, help="clients connecting at once")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--redis-url",
        help="full-stack arrangement: the feed as its own process (run_feed) publishing through this Redis "
        "(its quote hash and pub/sub channel are overwritten); default: standalone, the feed inside the server",
    )
    parser.add_argument("--port", type=int)
    parser.add_argument("--cookie")
    parser.add_argument("--ids")
    args = parser.parse_args()
    if args.role == "clients":
        asyncio.run(_run_clients(args))
        return

    var = tempfile.mkdtemp(prefix="bench-ticks-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    env.update(VAR_DIR=var, LOG_LEVEL="WARNING", MARKETDATA_SIM_RATE=str(args.rate),
               MARKETDATA_FRAME_MS=str(args.frame_ms))  # fmt: skip
    cookie, ids = _setup(env, args.instruments)
    print(
        f"feed {args.rate} ticks/s over {len(ids)} instruments -> {args.clients} clients x {args.subs} instruments, "
        f"frame {args.frame_ms} ms, {args.duration:.0f} s per server, {os.cpu_count()} cores, "
        + ("feed process -> Redis -> server" if args.redis_url else "standalone (feed inside the server)"),
        flush=True,
    )
    port = _free_port()
    feed_cmd = feed_port = None
    if args.redis_url:
        feed_port = _free_port()
        feed_cmd = [sys.executable, "manage.py", "run_feed", "--rate", str(args.rate), "--metrics-port", str(feed_port)]
    terminal = _drive(
        [sys.executable, "manage.py", "run_terminal", "--no-celery", "--port", str(port)],
        env, args, cookie, ids, metrics=True, feed_cmd=feed_cmd, feed_port=feed_port,
    )  # fmt: skip
    rows = [("terminal /ws/ticks/", terminal)]
    if not args.skip_bare:
        per_frame = terminal["updates_per_s"] / max(terminal["frames_per_s"], 1e-9)
        args._bare_port = _free_port()
        bare_env = {**env, "BENCH_UPDATES": str(max(round(per_frame), 1)), "BENCH_FRAME_MS": str(args.frame_ms)}
        bare = _drive(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(args._bare_port),
             "bench.bare_server:application"],
            bare_env, args, cookie, ids, metrics=False,
        )  # fmt: skip
        rows.append(("bare broadcast (Daphne)", bare))
    print(f"{'server':26} {'clients':>7} {'ticks/s':>9} {'updates/s':>10} {'frames/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'rss start':>10} {'rss end':>8} {'rss max':>8}")  # fmt: skip
    for name, r in rows:
        print(
            f"{name:26} {r['connected']:>7} {r.get('ticks_per_s', float('nan')):>9.0f} {r['updates_per_s']:>10.0f} "
            f"{r['frames_per_s']:>9.0f} {r['p50_ms'] or float('nan'):>8.1f} {r['p99_ms'] or float('nan'):>8.1f} "
            f"{r['rss_start_mb']:>9.1f}M {r['rss_end_mb']:>7.1f}M {r['rss_max_mb']:>7.1f}M"
        )
    print(f"terminal dropped by conflation: {terminal.get('dropped_per_s', 0):.0f} updates/s")
    lag = terminal.get("server_lag") or {}
    if lag.get("+Inf"):
        total = lag["+Inf"]
        shares = ", ".join(f"<={bound}s {count / total:.1%}" for bound, count in lag.items() if bound != "+Inf")
        print(f"server-side fan-out lag (terminal_fanout_lag_seconds, oldest tick per frame): {shares}")
    if len(rows) == 2:
        bare = rows[1][1]
        print(
            f"ratio terminal/bare: updates/s {terminal['updates_per_s'] / bare['updates_per_s']:.2f}, "
            f"p50 {terminal['p50_ms'] / bare['p50_ms']:.1f}x, p99 {terminal['p99_ms'] / bare['p99_ms']:.1f}x "
            f"(terminal latency includes the wait for the next {args.frame_ms} ms frame; bare stamps at send)"
        )


if __name__ == "__main__":
    main()

"""Tick fan-out benchmark: the terminal's /ws/ticks/ against a bare broadcast server, same stack, same run.

    python bench/ticks.py --redis-url redis://127.0.0.1:6379/9 --workers 2   # the target: 2,000 ticks/s,
                                               # 500 instruments, 1,000 clients x 20 instruments, 60 s,
                                               # two uvicorn processes under gunicorn
    python bench/ticks.py --clients 100 --duration 15     # a quick run (standalone, one process)
    python bench/ticks.py --redis-url ... --workers 2 --duration 300       # memory over five minutes
    python bench/ticks.py --server daphne      # the same on Daphne

Processes over loopback: this one (set-up and measurement); the server (standalone: ``manage.py
run_terminal`` with the simulator at ``--rate`` over ``--instruments`` instruments inside; full stack,
``--redis-url``: ``run_feed`` as its own process publishing through Redis to gunicorn's ``--workers``
uvicorn processes, or to one Daphne); and the clients (the ``websockets`` package, all sockets in
one asyncio process on uvloop, signed in with a two-factor session cookie, each subscribed to
``--subs`` random instruments in JSON format). Latency is tick timestamp to client receipt (one
machine, one clock), so it includes the conflation frame wait. Then the same clients against
bench/bare_server.py on the same stack, sending the same number of updates per frame without any
terminal code. Prints ticks/s ingested, updates/s delivered, p50/p99/max latency, server and client
CPU, server RSS at start, end and maximum, and terminal/bare ratios.
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
async def _client(url, cookie, port, instruments, samples, counts, ready, start_event, *, stalled=False):
    import websockets

    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    # Offers permessage-deflate, as browsers do: the server decides whether to compress. A stalled client
    # holds at most one unread message, then stops reading its socket, which fills up to the server.
    queue = 1 if stalled else None
    async with websockets.connect(url, additional_headers=headers, max_queue=queue, ping_interval=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "instruments": instruments}))
        ready.append(1)
        if stalled:
            await asyncio.Event().wait()  # never reads again; the process exits at the end
        async for raw in ws:  # until the measurement ends and the process exits
            now = time.time() * 1000
            if not start_event.is_set():
                continue
            message = json.loads(raw)
            if message.get("type") != "quotes":
                continue
            quotes = message["quotes"]
            counts[0] += len(quotes)
            counts[1] += 1
            for quote in quotes:
                samples.append(now - quote["ts"])


def _cpu_seconds(pid: int | str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _run_clients(args) -> None:
    rng = random.Random(args.seed)
    ids = [int(i) for i in args.ids.split(",")]
    samples: array = array("d")
    counts = [0, 0]  # updates, frames
    ready: list[int] = []
    start_event = asyncio.Event()
    warm_end = time.time() + args.connect_timeout
    url = f"ws://127.0.0.1:{args.port}/ws/ticks/?format=json"
    tasks = []
    # Connect in waves, each waiting for the previous one's sockets to be accepted: Daphne drops a
    # handshake the application has not accepted within 5 s, and a thousand at once would queue the
    # session look-ups past that.
    for number in range(args.clients):
        stalled = number < args.stalled
        subscription = rng.sample(ids, min(args.stalled_subs if stalled else args.subs, len(ids)))
        tasks.append(
            asyncio.create_task(
                _client(url, args.cookie, args.port, subscription, samples, counts, ready, start_event, stalled=stalled)
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
    print(json.dumps({"event": "connected", "clients": sum(1 for t in tasks if not t.done())}), flush=True)
    await asyncio.sleep(2)  # settle
    start_event.set()
    started = time.time()
    cpu_start = _cpu_seconds()
    await asyncio.sleep(args.duration)
    elapsed = time.time() - started
    cpu = (_cpu_seconds() - cpu_start) / elapsed
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
        "client_cpu": cpu,
    }
    print(json.dumps(result), flush=True)
    os._exit(0)  # closing a thousand sockets politely takes longer than the measurement is worth


# --- orchestration ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """Return ``pid`` and its descendants (gunicorn's master and workers; Daphne is one process)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return pids


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _tree_cpu(pid: int) -> float:
    total = 0.0
    for member in _tree(pid):
        try:
            total += _cpu_seconds(member)
        except OSError:
            continue
    return total


def _scrape(ports: list[int]) -> str:
    return "\n".join(
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60).read().decode() for port in ports
    )


def _metric(body: str, name: str) -> float:
    """Sum of a counter over the scraped processes."""
    return sum(float(line.split()[1]) for line in body.splitlines() if line.startswith(name + " "))


def _histogram(body: str, name: str) -> dict[str, float]:
    """Return the cumulative bucket counts of a histogram by upper bound, summed over the scraped processes."""
    buckets: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="')[1].split('"')[0]
            buckets[bound] = buckets.get(bound, 0.0) + float(line.split()[-1])
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


def _server(args, app: str, port: int, env: dict, metrics_ports: list[int]) -> tuple[list[str], dict]:
    """Return the command and environment serving ``app`` ("terminal" or "bare") on ``port`` as ``--server``
    and ``--workers`` say; each terminal process serves its Prometheus registry on one of ``metrics_ports``."""
    env = dict(env)
    if args.server == "daphne" or not (args.redis_url or args.workers > 1):  # one process
        if app == "terminal":
            env["METRICS_PORT"] = str(metrics_ports[0])
            cmd = [sys.executable, "manage.py", "run_terminal", "--no-celery", "--server", args.server]
            cmd += ["--port", str(port)]
        elif args.server == "daphne":
            cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bench.bare_server:application"]
        else:
            cmd = [sys.executable, "-c", "import sys, uvicorn; from config.serving import UVICORN_OPTIONS; "
                   "uvicorn.run('bench.bare_server:application', host='127.0.0.1', port=int(sys.argv[1]), "
                   "log_level='warning', access_log=False, **UVICORN_OPTIONS)", str(port)]  # fmt: skip
        return cmd, env
    # Several uvicorn processes sharing the port, as gunicorn runs them in production.
    if app == "terminal":
        env["BENCH_METRICS_PORTS"] = ",".join(map(str, metrics_ports))
    target = "config.asgi:application" if app == "terminal" else "bench.bare_server:application"
    conf = str(ROOT / "bench" / "gunicorn_conf.py")
    cmd = [sys.executable, "-m", "gunicorn", target, "-k", "config.serving.UvicornWorker", "-w", str(args.workers),
           "-b", f"127.0.0.1:{port}", "-c", conf, "--graceful-timeout", "5"]  # fmt: skip
    return cmd, env


def _setup(env: dict, instruments: int) -> tuple[str, list[int]]:
    """Migrate a fresh standalone database, load the sample master, keep ``instruments`` active (spot,
    futures and options alike), and sign a user in with both factors.
    Returns (session cookie, active instrument ids)."""
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
from tests.otp_session import login_with_otp
ids = list(Instrument.objects.order_by("pk").values_list("pk", flat=True)[:{instruments}])
Instrument.objects.exclude(pk__in=ids).update(is_active=False)
user, _ = User.objects.get_or_create(username="bench")
client = login_with_otp(Client(), user)  # a socket's user must have passed the second factor
print(json.dumps({{"cookie": client.cookies["sessionid"].value, "ids": ids}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["cookie"], data["ids"]


def _drive(app, env, args, cookie, ids, *, feed_cmd=None, feed_port=None) -> dict:
    """Serve ``app`` ("terminal" or "bare"), run the clients against it, and return their measurements with
    the server's CPU, memory and (the terminal's) metrics over the measured window."""
    port = _free_port()
    metrics_ports = [_free_port() for _ in range(args.workers)]
    server_cmd, server_env = _server(args, app, port, env, metrics_ports)
    errors = None if args.verbose else subprocess.DEVNULL
    server = subprocess.Popen(server_cmd, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=errors,
                              start_new_session=True)  # fmt: skip
    feed = None
    if feed_cmd:
        feed = subprocess.Popen(feed_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=errors, start_new_session=True)  # fmt: skip
    terminal = app == "terminal"
    profilers = []
    try:
        if terminal:
            _wait_http(port, "/api/health")
            for metrics_port in metrics_ports:
                _wait_http(metrics_port, "/metrics")
        else:
            _wait_port(port)
        if feed_port:
            _wait_http(feed_port, "/metrics")
        clients = subprocess.Popen(
            [sys.executable, __file__, "--role", "clients", "--port", str(port), "--cookie", cookie,
             "--ids", ",".join(map(str, ids)), "--clients", str(args.clients), "--subs", str(args.subs),
             "--duration", str(args.duration), "--seed", str(args.seed), "--wave", str(args.wave),
             "--stalled", str(args.stalled), "--stalled-subs", str(args.stalled_subs),
             "--connect-timeout", str(args.connect_timeout)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        connected = json.loads(clients.stdout.readline())
        time.sleep(2)  # the clients' settling time; they start counting now
        rss_start = _rss_mb(server.pid)
        cpu_start = _tree_cpu(server.pid)
        body = _scrape(metrics_ports) if terminal else ""
        ticks_start = _metric(_scrape([feed_port]) if feed_port else body, "terminal_ticks_ingested_total")
        dropped_start = _metric(body, "terminal_conflation_dropped_total")
        if args.py_spy and terminal:
            profilers = _start_profiles(args, server.pid)
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
        result["server_cpu"] = (_tree_cpu(server.pid) - cpu_start) / elapsed
        rss_end = _rss_mb(server.pid)
        if terminal:
            body = _scrape(metrics_ports)
            result["server_lag"] = _histogram(body, "terminal_fanout_lag_seconds")
            ticks_end = _metric(_scrape([feed_port]) if feed_port else body, "terminal_ticks_ingested_total")
            result["ticks_per_s"] = (ticks_end - ticks_start) / elapsed
            result["dropped_per_s"] = (_metric(body, "terminal_conflation_dropped_total") - dropped_start) / elapsed
        result.update(connected=connected["clients"], rss_start_mb=rss_start, rss_end_mb=rss_end, rss_max_mb=rss_max)
        clients.wait(timeout=30)
        for profiler in profilers:
            profiler.wait(timeout=60)
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


def _start_profiles(args, server_pid: int) -> list[subprocess.Popen]:
    """Sample each serving process (gunicorn's workers, not its master) with py-spy over the measured window."""
    pids = _tree(server_pid)
    workers = pids[1:] if args.server != "daphne" and len(pids) > 1 else pids[:1]
    out = Path(args.py_spy_out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"profiling {workers} with py-spy into {out}/", flush=True)
    return [
        subprocess.Popen([args.py_spy, "record", "-p", str(pid), "-d", str(int(args.duration)), "-r", "100",
                          "-f", "raw", "-o", str(out / f"server-{pid}.txt")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in workers
    ]  # fmt: skip


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
    parser.add_argument("--stalled", type=int, default=0,
                        help="of the clients, how many subscribe and then stop reading (slow readers)")  # fmt: skip
    parser.add_argument("--stalled-subs", type=int, default=500, help="instruments per stalled client")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument(
        "--redis-url",
        help="full-stack arrangement: the feed as its own process (run_feed) publishing through this Redis "
        "(its quote hash and pub/sub channel are overwritten); default: standalone, the feed inside the server",
    )
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn",
                        help="the ASGI server, for the terminal and the bare baseline alike")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn processes sharing the port under gunicorn (full stack only)")  # fmt: skip
    parser.add_argument("--py-spy", metavar="PATH", help="py-spy executable: sample the terminal's processes")
    parser.add_argument("--py-spy-out", default="bench-ticks-profile", help="directory for py-spy's raw stacks")
    parser.add_argument("--verbose", action="store_true", help="show the servers' and feed's error output")
    parser.add_argument("--port", type=int)
    parser.add_argument("--cookie")
    parser.add_argument("--ids")
    args = parser.parse_args()
    if args.role == "clients":
        try:
            import uvloop
        except ImportError:  # the clients then run on asyncio's own loop, slower
            asyncio.run(_run_clients(args))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_run_clients(args))
        return
    if args.workers < 1 or (args.workers > 1 and (args.server == "daphne" or not args.redis_url)):
        parser.error("--workers above 1 needs --server uvicorn and --redis-url: the hub of each process "
                     "gets its ticks from Redis")  # fmt: skip

    var = tempfile.mkdtemp(prefix="bench-ticks-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "METRICS_PORT"}}
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    env.update(VAR_DIR=var, LOG_LEVEL="WARNING", MARKETDATA_SIM_RATE=str(args.rate),
               MARKETDATA_FRAME_MS=str(args.frame_ms),
               WEBSOCKET_MAX_PER_USER=str(args.clients + 10))  # every client is the one bench user  # fmt: skip
    cookie, ids = _setup(env, args.instruments)
    arrangement = "feed process -> Redis -> server" if args.redis_url else "standalone (feed inside the server)"
    stack = "Daphne" if args.server == "daphne" else f"uvicorn x{args.workers}"
    stack += " (gunicorn)" if args.server == "uvicorn" and args.redis_url else ""
    print(
        f"feed {args.rate} ticks/s over {len(ids)} instruments -> {args.clients} clients x {args.subs} instruments, "
        f"frame {args.frame_ms} ms, {args.duration:.0f} s per server, {os.cpu_count()} cores, {arrangement}, {stack}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    feed_cmd = feed_port = None
    if args.redis_url:
        feed_port = _free_port()
        feed_cmd = [sys.executable, "manage.py", "run_feed", "--rate", str(args.rate), "--metrics-port", str(feed_port)]
    terminal = _drive("terminal", env, args, cookie, ids, feed_cmd=feed_cmd, feed_port=feed_port)
    rows = [("terminal /ws/ticks/", terminal)]
    if not args.skip_bare:
        per_frame = terminal["updates_per_s"] / max(terminal["frames_per_s"], 1e-9)
        bare_env = {**env, "BENCH_UPDATES": str(max(round(per_frame), 1)), "BENCH_FRAME_MS": str(args.frame_ms)}
        rows.append((f"bare broadcast ({stack})", _drive("bare", bare_env, args, cookie, ids)))
    print(f"{'server':34} {'clients':>7} {'ticks/s':>8} {'updates/s':>9} {'frames/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'srv cpu':>7} {'cli cpu':>7} {'rss start':>9} {'rss end':>8} {'rss max':>8}")  # fmt: skip
    for name, r in rows:
        print(
            f"{name:34} {r['connected']:>7} {r.get('ticks_per_s', float('nan')):>8.0f} {r['updates_per_s']:>9.0f} "
            f"{r['frames_per_s']:>8.0f} {r['p50_ms'] or float('nan'):>7.1f} {r['p99_ms'] or float('nan'):>7.1f} "
            f"{r['max_ms'] or float('nan'):>7.0f} {r['server_cpu']:>7.0%} {r['client_cpu']:>7.0%} "
            f"{r['rss_start_mb']:>8.1f}M {r['rss_end_mb']:>7.1f}M {r['rss_max_mb']:>7.1f}M"
        )
    print("cpu: share of one core over the measured window (server: all its processes; clients: their one process)")
    print(f"terminal dropped by conflation: {terminal.get('dropped_per_s', 0):.0f} updates/s")
    lag = terminal.get("server_lag") or {}
    if lag.get("+Inf"):
        total = lag["+Inf"]
        shares = ", ".join(f"<={bound}s {count / total:.1%}" for bound, count in lag.items() if bound != "+Inf")
        print(f"server-side fan-out lag (terminal_fanout_lag_seconds, oldest tick per frame): {shares}")
    if len(rows) == 2 and rows[1][1]["p50_ms"] and terminal["p50_ms"]:
        bare = rows[1][1]
        print(
            f"ratio terminal/bare: updates/s {terminal['updates_per_s'] / bare['updates_per_s']:.2f}, "
            f"p50 {terminal['p50_ms'] / bare['p50_ms']:.1f}x, p99 {terminal['p99_ms'] / bare['p99_ms']:.1f}x "
            f"(terminal latency includes the wait for the next {args.frame_ms} ms frame; bare stamps at send)"
        )


if __name__ == "__main__":
    main()

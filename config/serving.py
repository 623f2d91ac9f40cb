"""How the terminal is served by uvicorn: its options, shared by ``run_terminal --server uvicorn`` and the
gunicorn worker class (``gunicorn config.asgi:application -k config.serving.UvicornWorker -w N``).

- permessage-deflate is off. Browsers offer it on every socket and uvicorn accepts it by default; at
  the quote sockets' rate (one message per client per frame) compressing each message costs more CPU
  than the websocket framing and the write together, on loopback and behind a proxy alike.
- ``ws="websockets-sansio"``: the ``websockets`` library's protocol driven by uvicorn; an ASGI
  ``send`` awaits while the client's transport buffer is above its high-water mark, which is the
  back-pressure the tick consumers conflate behind (``marketdata.consumers``).
- A client message is at most 256 KiB: the largest legitimate one, a subscription to the 500
  instruments a socket may hold by trading symbol, is about 16 KiB.
- Pings every 20 s; a client that has not answered 20 s later is closed.
- No proxy headers: uvicorn's default trusts X-Forwarded-For from 127.0.0.1 (``forwarded_allow_ips``)
  and would hand a forged client address to the application. The application alone applies
  ``TRUSTED_PROXIES`` (``core.client_ip.TrustedProxyMiddleware``), so the rule lives in one
  place and reads the same under uvicorn, gunicorn and Daphne.
- The lifespan protocol is on, for its shutdown: the worker pushes the order changes still queued
  before it exits (``infra/lifespan.py``). Gunicorn's ``worker_exit`` hook and ``atexit`` do not
  run when gunicorn stops a uvicorn worker with SIGTERM; the lifespan shutdown does.
- A stopping worker waits at most 15 s for its requests and sockets to finish, then cancels what is
  left, so that the push drain (``infra.lifespan.DRAIN_SECONDS``) still fits in gunicorn's
  ``graceful_timeout`` before the worker is killed (tests/terminal/test_worker_shutdown.py).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "ws_max_size": 256 * 1024,
    "ws_ping_interval": 20.0,
    "ws_ping_timeout": 20.0,
    "proxy_headers": False,  # core.client_ip applies TRUSTED_PROXIES
    "lifespan": "on",  # "on", not "auto": an application that cannot answer it fails at start-up
    "timeout_graceful_shutdown": 15,
}


class UvicornWorker(_UvicornWorker):
    """The gunicorn worker class: uvicorn with ``UVICORN_OPTIONS``."""

    CONFIG_KWARGS = UVICORN_OPTIONS

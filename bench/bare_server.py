"""The baseline for bench/ticks.py: a bare broadcast server on the same websocket stack as the terminal
(uvicorn with config.serving's options, one process or several under gunicorn, or Daphne).

A plain ASGI application with no Django, no authentication, no subscriptions and no rendering: every
frame it sends every client connected to its process one pre-built JSON frame of BENCH_UPDATES quotes
stamped with the send time, one client after another. What the terminal does beyond this is the cost
being measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

FRAME_SECONDS = int(os.environ.get("BENCH_FRAME_MS", "250")) / 1000
UPDATES = int(os.environ.get("BENCH_UPDATES", "20"))
_clients: set = set()
_ticker: asyncio.Task | None = None


async def _broadcast() -> None:
    next_at = time.monotonic()
    while True:
        next_at += FRAME_SECONDS
        await asyncio.sleep(max(next_at - time.monotonic(), 0.0))
        ts = round(time.time() * 1000)
        quotes = [
            {"i": i, "ltp": "1550.05", "ch": "2.5", "pct": "0.16", "v": 1000, "oi": 0, "ts": ts} for i in range(UPDATES)
        ]
        frame = json.dumps({"type": "quotes", "quotes": quotes}, separators=(",", ":"))
        for send in list(_clients):
            try:
                await send({"type": "websocket.send", "text": frame})
            except Exception:  # a client that went away
                _clients.discard(send)


async def application(scope, receive, send):
    global _ticker
    if scope["type"] != "websocket":
        return
    if _ticker is None:
        _ticker = asyncio.get_running_loop().create_task(_broadcast())
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            _clients.add(send)
        elif message["type"] == "websocket.disconnect":
            _clients.discard(send)
            return

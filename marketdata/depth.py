"""Market depth for the pages: an instrument's best bids and offers, level by level, from the quote store.

The depth panel (``templates/marketdata/depth.html#depth``) is rendered by one function, ``depth_html``,
for the ticket, the watchlist row and the depth socket alike (``/ws/ticks/?format=depth``, which reads
the full quotes from the store each frame: the fan-out channel carries no depth).
"""

from __future__ import annotations

from itertools import zip_longest

from django.template.loader import get_template

from marketdata.quotes import Quote

DEPTH_PARTIAL = "marketdata/depth.html#depth"
MAX_LEVELS = 20  # Kite's twenty-level depth; the simulator and most feeds give five


def depth_context(instrument_id: int, quote: Quote | None) -> dict:
    """The depth partial's context: ``levels`` as (bid, offer) pairs, best first (either may be None
    where one side is shorter), and each side's total quantity."""
    bids = sorted(quote.bids, key=lambda lv: -lv.price)[:MAX_LEVELS] if quote else []
    asks = sorted(quote.asks, key=lambda lv: lv.price)[:MAX_LEVELS] if quote else []
    return {
        "instrument_id": instrument_id,
        "levels": list(zip_longest(bids, asks)),
        "bid_total": sum(lv.quantity for lv in bids),
        "ask_total": sum(lv.quantity for lv in asks),
    }


def depth_html(instrument_id: int, quote: Quote | None) -> str:
    """Render the depth panel of ``instrument_id`` from ``quote`` (None: the empty panel)."""
    return get_template(DEPTH_PARTIAL).render(depth_context(instrument_id, quote))

"""When the Indian market trades: NSE's cash session, 09:15 to 15:30 IST, Monday to Friday."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
MARKET_OPEN, MARKET_CLOSE = time(9, 15), time(15, 30)  # NSE cash, IST; pre-open (09:00-09:15) excluded


def market_open(now: datetime) -> bool:
    """Whether NSE's cash market is in its normal session at ``now`` (an aware datetime): a weekday,
    09:15 included to 15:30 excluded, India time.

    Exchange holidays (and special sessions such as Muhurat trading) are out of scope: a weekday
    holiday counts as open. MCX's later sessions are not covered either."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    local = now.astimezone(IST)
    return local.weekday() < 5 and MARKET_OPEN <= local.time() < MARKET_CLOSE

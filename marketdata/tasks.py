from __future__ import annotations

from celery import shared_task

from marketdata.services import candle_partitions_ensure


@shared_task(ignore_result=True, acks_late=True, time_limit=60, soft_time_limit=50)
def ensure_candle_partitions(months_ahead: int = 2) -> list[str]:
    """Create this month's and the next ``months_ahead`` candle partitions if missing (idempotent)."""
    return candle_partitions_ensure(months_ahead=months_ahead)

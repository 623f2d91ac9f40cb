from datetime import date

import pytest
from django.core.cache import cache

from marketdata import fanout, quotes
from marketdata.feeds.publisher import HEARTBEAT_KEY
from marketdata.sample_master import sample_rows
from marketdata.services import instrument_upsert_many


@pytest.fixture(autouse=True)
def _fresh_tick_path():
    """Each test gets its own hub and an empty quote store, and leaves no feed heartbeat behind."""
    fanout._hub = None
    quotes.store().clear()
    yield
    fanout._hub = None
    quotes.store().clear()
    cache.delete(HEARTBEAT_KEY)


@pytest.fixture
def sample_master(db):
    """The sample symbol master for a fixed day (expiry 29 Dec 2026)."""
    report = instrument_upsert_many(rows=enumerate(sample_rows(date(2026, 11, 25)), start=1))
    assert not report.errors
    return report

"""The Kite symbol master is refreshed after the morning's first Kite sign-in (every session ends at
06:00 IST, and the download needs one), once however many traders sign in; past
KITE_INSTRUMENTS_DUE_BY it is reported overdue when it is still not loaded."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY

from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import IST, session_end, session_start
from kite import master_refresh
from kite.master_refresh import last_cutoff, master_overdue
from kite.tasks import refresh_kite_instruments
from tests.kite import fake_kite as fk

pytestmark = pytest.mark.django_db

TEXT = (Path(__file__).parent / "fixtures" / "instruments.csv").read_bytes().decode()


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, dict]]:
    """The tasks a sign-in sends, by name with their keyword arguments (nothing reaches a task broker)."""
    sent: list[tuple[str, dict]] = []

    class _App:
        def send_task(self, name, args=None, kwargs=None, **options):
            sent.append((name, dict(kwargs or {})))

    monkeypatch.setattr(master_refresh, "current_app", _App())
    cache.delete(f"kite:instruments:refresh-queued:{last_cutoff(timezone.now()):%Y%m%d}")
    return sent


@pytest.fixture
def yesterdays_master(kite_account):
    """The mapping as yesterday's import left it: loaded before this morning's cut-off."""
    BrokerInstrument.objects.filter(broker="kite").update(listed_at=last_cutoff(timezone.now()) - timedelta(hours=2))


def _sign_in(account, django_capture_on_commit_callbacks, token: str = fk.ACCESS_TOKEN) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        session_start(account=account, secrets={"access_token": token}, expires_at=timezone.now() + timedelta(hours=8))


def _second_account(kite_account) -> BrokerAccount:
    other = BrokerAccount.objects.create(organisation=kite_account.organisation, label="Desk 2", broker="kite")
    broker_credentials_set(account=other, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    return other


def test_a_kite_sign_in_queues_one_refresh_which_downloads_with_the_accounts_headers(
    kite_account, yesterdays_master, queued, fake_kite, settings, django_capture_on_commit_callbacks
):
    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    fake_kite.instruments_csv = TEXT
    _sign_in(kite_account, django_capture_on_commit_callbacks)
    assert queued == [("kite.tasks.refresh_kite_instruments", {"if_stale": True})]
    report = refresh_kite_instruments(**queued[0][1])  # what the worker runs
    assert report["created"] + report["updated"] == 33 and report["rejected"] == 0
    asked = fake_kite.last("GET", "/instruments")
    assert asked.headers["authorization"] == f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"
    assert asked.headers["x-kite-version"] == "3"
    assert master_refresh.master_loaded_since_cutoff()


def test_concurrent_sign_ins_queue_one_refresh_and_a_sign_in_after_the_load_queues_none(
    kite_account, yesterdays_master, queued, fake_kite, settings, django_capture_on_commit_callbacks
):
    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    fake_kite.instruments_csv = TEXT
    other = _second_account(kite_account)
    _sign_in(kite_account, django_capture_on_commit_callbacks)
    _sign_in(other, django_capture_on_commit_callbacks, token="second-token")  # before the refresh ran
    assert len(queued) == 1
    refresh_kite_instruments(**queued[0][1])
    cache.delete(f"kite:instruments:refresh-queued:{last_cutoff(timezone.now()):%Y%m%d}")  # as if it lapsed:
    # only the loaded master holds a later sign-in off
    _sign_in(other, django_capture_on_commit_callbacks, token="third-token")
    assert len(queued) == 1
    # A refresh queued while the beat run already loaded the master downloads nothing.
    asked = len(fake_kite.requests)
    assert refresh_kite_instruments(if_stale=True) == {"skipped": 1}
    assert len(fake_kite.requests) == asked


def test_a_paper_sign_in_queues_nothing_and_a_refresh_that_cannot_be_queued_is_queued_by_the_next_sign_in(
    kite_account, yesterdays_master, queued, monkeypatch, django_capture_on_commit_callbacks
):
    paper = BrokerAccount.objects.create(organisation=kite_account.organisation, label="Paper", broker="paper")
    _sign_in(paper, django_capture_on_commit_callbacks)
    assert queued == []

    class _Down:
        def send_task(self, *args, **kwargs):
            raise ConnectionError("the task broker is down")

    recorder = master_refresh.current_app
    monkeypatch.setattr(master_refresh, "current_app", _Down())
    _sign_in(kite_account, django_capture_on_commit_callbacks)  # the sign-in stands
    assert BrokerAccount.objects.get(pk=kite_account.pk).session.state == "live"
    monkeypatch.setattr(master_refresh, "current_app", recorder)
    _sign_in(kite_account, django_capture_on_commit_callbacks)
    assert queued == [("kite.tasks.refresh_kite_instruments", {"if_stale": True})]


def test_beat_without_a_signed_in_account_waits_without_failing_and_the_master_is_overdue_only_past_the_due_time(
    kite_account, yesterdays_master, fake_kite, settings
):
    settings.KITE_INSTRUMENTS_DUE_BY = "09:30"
    session_end(account_id=kite_account.pk, reason="expired at the broker's cut-off")
    failures = REGISTRY.get_sample_value("terminal_kite_instruments_import_failures_total", {"reason": "download"})
    assert refresh_kite_instruments() == {"waiting": 1}
    assert REGISTRY.get_sample_value("terminal_kite_instruments_import_failures_total", {"reason": "download"}) == (
        failures
    )
    today = last_cutoff(timezone.now()).astimezone(IST).date()
    at = lambda hh, mm: datetime(today.year, today.month, today.day, hh, mm, tzinfo=IST)  # noqa: E731
    assert not master_overdue(at(8, 15)) and not master_overdue(at(9, 29))
    assert master_overdue(at(9, 30)) and master_overdue(at(15, 0))
    settings.KITE_INSTRUMENTS_DUE_BY = "10:00"
    assert not master_overdue(at(9, 45))
    BrokerAccount.objects.filter(broker="kite").update(is_active=False)  # nobody trades through Kite
    assert not master_overdue(at(15, 0))


def test_the_overdue_gauge_clears_once_the_master_is_loaded(kite_account, yesterdays_master, fake_kite, settings):
    from kite.metrics import KITE_MASTER_COLLECTOR

    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    settings.KITE_INSTRUMENTS_DUE_BY = "00:00"  # due from the cut-off's day's start: overdue now

    def gauges() -> dict[str, float]:
        return {f.name: f.samples[0].value for f in KITE_MASTER_COLLECTOR.collect() if f.samples}

    assert gauges()["terminal_kite_instruments_overdue"] == 1
    fake_kite.instruments_csv = TEXT
    refresh_kite_instruments()
    values = gauges()
    assert values["terminal_kite_instruments_overdue"] == 0
    assert abs(values["terminal_kite_instruments_loaded_timestamp_seconds"] - timezone.now().timestamp()) < 60

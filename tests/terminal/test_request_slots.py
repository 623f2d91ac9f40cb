"""A web process runs at most WEB_THREADS requests' Python at once; a request waiting on a network
broker gives its slot up meanwhile."""

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from brokers.adapters import registry
from brokers.adapters.base import Capabilities
from infra import request_slots
from infra.request_slots import RequestSlots
from infra.sync_asgi import SyncChainASGIHandler
from paper.adapter import PaperAdapter
from tests.terminal.test_request_threads import _get


def _run_together(slots: RequestSlots, n: int, body) -> None:
    threads = [threading.Thread(target=lambda: _in_slot(slots, body)) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def _in_slot(slots: RequestSlots, body) -> None:
    with slots.held():
        body()


def test_no_more_threads_than_slots_run_at_once():
    slots = RequestSlots(2)
    running, most, lock = 0, 0, threading.Lock()

    def body() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    _run_together(slots, 8, body)
    assert most == 2


def test_a_thread_waiting_on_the_network_lets_another_run_and_then_takes_a_slot_again():
    slots = RequestSlots(1)
    waiting, other_ran, back = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with slots.held(), slots.released():
            waiting.set()
            assert other_ran.wait(5)  # the other request ran while this one waited on the network
        back.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert waiting.wait(5)
    with slots.held():
        other_ran.set()
        time.sleep(0.05)
        assert not back.is_set()  # the first request needs a slot again to go on
    thread.join(5)
    assert back.is_set()


def test_a_slot_is_taken_once_per_thread_and_released_is_a_no_op_without_one():
    slots = RequestSlots(1)
    with slots.released():  # a worker or a command: holds no slot, gives nothing up
        pass
    with slots.held(), slots.held():  # nested: still the one slot, no deadlock
        pass
    with slots.held():  # and it was given back
        pass


def test_a_process_needs_at_least_one_slot():
    with pytest.raises(ValueError):
        RequestSlots(0)


@pytest.mark.django_db(transaction=True)
def test_the_asgi_handler_runs_the_chain_and_view_inside_a_slot(settings, beat_alive):
    handler = SyncChainASGIHandler()
    held = []
    original = handler.wsgi.get_response

    def get_response(request):
        held.append(getattr(handler.slots._mine, "held", False))
        return original(request)

    handler.wsgi.get_response = get_response
    try:
        assert asyncio.run(_get(handler, "/api/health")) == 200
    finally:
        handler.threads.close()
    assert held == [True]
    assert handler.slots.size == settings.WEB_THREADS


class _NetworkPaper(PaperAdapter):
    """The paper exchange as if it were reached over the network."""

    capabilities = Capabilities()
    seen: list[bool] = []

    def margin_rate(self, *, product, instrument_type, side):
        self.seen.append(getattr(request_slots.slots()._mine, "held", False))
        return super().margin_rate(product=product, instrument_type=instrument_type, side=side)


@pytest.fixture
def one_slot(monkeypatch):
    slots = RequestSlots(1)
    monkeypatch.setattr(request_slots, "_slots", slots)
    return slots


def test_a_network_brokers_calls_run_with_the_requests_slot_given_up(one_slot):
    registry.register("network-paper", _NetworkPaper)
    try:
        adapter = registry.adapter_for(SimpleNamespace(pk=1, broker="network-paper"))
        _NetworkPaper.seen.clear()
        with one_slot.held():
            adapter.margin_rate(product="MIS", instrument_type="EQ", side="BUY")
            assert getattr(one_slot._mine, "held", False)  # taken again after the call
        assert _NetworkPaper.seen == [False]
        assert isinstance(adapter.wrapped, _NetworkPaper) and not adapter.capabilities.places_in_transaction
    finally:
        registry.unregister("network-paper")


@pytest.mark.django_db(transaction=True)
def test_a_call_inside_a_transaction_keeps_the_slot(one_slot):
    # Its row locks may be what the requests in the other slots wait on: giving the slot up and
    # waiting for it again would deadlock where no one can see it.
    from django.db import transaction

    with one_slot.held(), transaction.atomic(), request_slots.released():
        assert getattr(one_slot._mine, "held", False)


def test_the_in_database_paper_exchange_keeps_the_slot():
    assert type(registry.adapter_for(SimpleNamespace(pk=1, broker="paper"))) is PaperAdapter


@pytest.mark.django_db(transaction=True)
def test_a_call_outside_a_transaction_gives_a_pooled_connection_back_for_the_wait(one_slot, monkeypatch):
    # Requests waiting on a broker must not hold the pool's connections (bench/orders.py --broker kite).
    from django.db import connections, transaction

    wrapper = connections["default"]
    wrapper.ensure_connection()
    closed: list[bool] = []
    monkeypatch.setattr(wrapper, "close", lambda: closed.append(True))
    assert not request_slots._pooled(wrapper)
    with one_slot.held(), request_slots.released():
        assert closed == []  # a persistent connection without a pool is kept
    monkeypatch.setattr(request_slots, "_pooled", lambda connection: True)
    with one_slot.held():
        with request_slots.released():
            assert closed == [True]
        with transaction.atomic(), request_slots.released():
            assert closed == [True]  # its transaction's locks stay with it
    with request_slots.released():  # no slot held: a worker, a command
        assert closed == [True]

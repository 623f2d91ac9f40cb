"""Concurrent writers, each on its own connection, never fork the chain."""

import threading

import pytest
from django.db import connection, connections

from compliance.chain import GENESIS_HASH
from compliance.models import AuditEvent
from compliance.services import audit_record

pytestmark = pytest.mark.django_db(transaction=True)


def _append_from_threads(threads: int, per_thread: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(number: int) -> None:
        try:
            start.wait()
            for index in range(per_thread):
                audit_record(actor=f"system:writer{number}", action="test.appended", payload={"index": index})
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def _assert_one_unbroken_chain(expected: int) -> None:
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert [seq for seq, _, _ in rows] == list(range(1, expected + 1))
    previous = GENESIS_HASH
    for _, prev_hash, hash_ in rows:
        assert prev_hash == previous
        previous = hash_


@pytest.mark.postgres
def test_eight_threads_of_250_appends_give_2000_events_in_one_unbroken_chain():
    assert _append_from_threads(8, 250) == []
    _assert_one_unbroken_chain(2000)


def test_a_transactional_test_can_write_events_and_still_be_flushed():
    # The flush after this test passes the audit triggers only through tests/audit_flush.py.
    audit_record(actor=None, action="test.appended", payload={})
    assert connection.vendor in {"postgresql", "sqlite"}
    _assert_one_unbroken_chain(1)

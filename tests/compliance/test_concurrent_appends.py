"""Concurrent writers, each on its own connection, never fork the chain."""

import contextlib
import threading

import pytest
from django.db import connection, connections, transaction

from audit.chain import GENESIS_HASH
from audit.models import AuditEvent
from audit.services import audit_record
from audit.verification import verify_chains

pytestmark = pytest.mark.django_db(transaction=True)


class _RolledBack(Exception):
    pass


def _append_from_threads(threads: int, per_thread: int, roll_back_every: int = 0) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(number: int) -> None:
        try:
            start.wait()
            for index in range(per_thread):
                if roll_back_every and index % roll_back_every == 0:
                    with contextlib.suppress(_RolledBack), transaction.atomic():
                        audit_record(actor=f"system:writer{number}", action="test.rolled_back", payload={})
                        raise _RolledBack
                else:
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


def _assert_unbroken_chains(expected: int) -> None:
    rows = list(AuditEvent.objects.order_by("chain", "seq").values_list("chain", "seq", "prev_hash", "hash"))
    assert len(rows) == expected
    chains: dict[int, list[tuple[int, str, str]]] = {}
    for chain, seq, prev_hash, hash_ in rows:
        chains.setdefault(chain, []).append((seq, prev_hash, hash_))
    for events in chains.values():
        assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
        previous = GENESIS_HASH
        for _, prev_hash, hash_ in events:
            assert prev_hash == previous
            previous = hash_


@pytest.mark.postgres
def test_eight_threads_of_250_appends_give_2000_events_in_unbroken_chains():
    assert _append_from_threads(8, 250) == []
    _assert_unbroken_chains(2000)
    assert verify_chains().ok


@pytest.mark.postgres
def test_events_rolled_back_by_concurrent_transactions_leave_no_gaps():
    assert _append_from_threads(4, 100, roll_back_every=4) == []
    _assert_unbroken_chains(300)
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()


def test_a_transactional_test_can_write_events_and_still_be_flushed():
    # The flush after this test passes the audit triggers only through tests/audit_flush.py.
    audit_record(actor=None, action="test.appended", payload={})
    assert connection.vendor in {"postgresql", "sqlite"}
    _assert_unbroken_chains(1)

"""A month restored from its archive into the scratch database reproduces its rows exactly: keys,
dates to the microsecond, decimals, JSON; a bad archive or a second restore writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from audit.services import audit_record
from orders.models import Order, OrderEvent, Trade
from retention.errors import ArchiveInvalid, RetentionError
from retention.months import Month
from retention.records import records
from retention.services.archive import archive_month
from retention.services.restore import restore_month
from retention.storage import archive_storage
from tests.retention.book import Book

pytestmark = pytest.mark.django_db(databases=["default", "scratch"])


def _month():
    now = timezone.now()
    month = Month.containing(now)
    acme, globex = Book("acme"), Book("globex")
    earlier = max(month.start - dt.timedelta(days=3), now - dt.timedelta(days=400))
    carried = acme.order(earlier, fills=0)  # an older order whose event lands in this month
    OrderEvent.objects.create(order=carried, kind="cancel_request", data={"why": "end of day"})
    for book in (acme, globex):
        for fills in (0, 1, 3):
            book.order(now - dt.timedelta(microseconds=fills * 7), fills=fills)
    audit_record(actor=acme.user, action="order.placed", payload={"qty": 3, "price": "101.25"})
    audit_record(actor=None, action="rms.rejected", payload={"rule": "qty"})
    archive_month(month=month, now=month.end)
    return month


def _in_month(model, field, month, using="default"):
    return list(records(model.objects.using(using).filter(**{f"{field}__gte": month.start, f"{field}__lt": month.end})))


def test_a_restored_month_reproduces_its_rows_exactly():
    month = _month()
    summary = restore_month(month=month)
    for model, field in ((Order, "created_at"), (OrderEvent, "created_at"), (Trade, "executed_at")):
        live, restored = _in_month(model, field, month), _in_month(model, field, month, using="scratch")
        assert live and restored == live, model
    assert list(records(AuditEvent.objects.using("scratch").all())) == list(records(AuditEvent.objects.all()))
    assert summary.rows == {"orders_order": 6, "orders_orderevent": 7, "orders_trade": 8, "compliance_auditevent": 2}
    # The parents came from the archive, without secrets.
    assert Organisation.objects.using("scratch").count() == 2
    assert Order.objects.using("scratch").count() == 7  # the six of the month and the older one
    assert all(
        password == "!" for password in Order.objects.using("scratch").values_list("placed_by__password", flat=True)
    )


def test_restoring_the_same_month_twice_writes_nothing_the_second_time():
    month = _month()
    restore_month(month=month)
    with pytest.raises(RetentionError) as caught:
        restore_month(month=month)
    assert caught.value.code == "restore_rows_exist"
    assert Trade.objects.using("scratch").count() == 8


def test_a_corrupted_archive_is_not_restored():
    month = _month()
    name = next(n for n in archive_storage().listdir(str(month))[0] if n.startswith("org-"))
    path = archive_storage().path(f"{month}/{name}/trades.jsonl.gz")
    with open(path, "r+b") as handle:
        handle.seek(15)
        handle.write(b"\x00\x00\x00")
    with pytest.raises(ArchiveInvalid) as caught:
        restore_month(month=month)
    assert caught.value.extra["file"] == f"{month}/{name}/trades.jsonl.gz"
    assert not Order.objects.using("scratch").exists()


def test_the_command_restores_and_refuses_the_live_database(capsys):
    month = _month()
    with pytest.raises(CommandError, match="restore_into_live"):
        call_command("archive_restore", str(month), "--database", "default")
    with pytest.raises(CommandError, match="restore_database_unknown"):
        call_command("archive_restore", str(month), "--database", "nowhere")
    call_command("archive_restore", str(month))
    assert f"restored {month} into 'scratch': 23 rows" in capsys.readouterr().out


def test_a_scratch_alias_pointing_at_the_live_database_is_refused(settings):
    from django.db import connections

    from retention.services.restore import _same_database

    live = connections["default"].settings_dict
    assert _same_database(dict(live), live)
    assert not _same_database(connections["scratch"].settings_dict, live)

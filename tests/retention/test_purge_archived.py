"""Rows of archived months outside the window can be purged; a month inside the window, or with rows
and no verified archive, is refused before anything is deleted; legal holds are skipped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.models import Order, OrderEvent, Trade
from retention.errors import PurgeRefused
from retention.models import LegalHold
from retention.months import Month
from retention.services.archive import archive_month
from retention.services.purge import purge_through
from retention.storage import archive_storage
from retention.tasks import archive_closed_months
from tests.retention.book import Book, years_ago

pytestmark = pytest.mark.django_db


def test_an_archived_month_outside_the_window_is_purged_and_recent_rows_stay():
    book = Book()
    old = years_ago(8)
    book.order(old, fills=2)
    book.order(old, fills=0)
    recent = book.order(years_ago(1))
    month = Month.containing(old)
    archive_month(month=month)
    summary = purge_through(through=month)
    assert summary.deleted == {"orders_trade": 2, "orders_orderevent": 2, "orders_order": 2}
    assert list(Order.objects.values_list("pk", flat=True)) == [recent.pk]
    assert Trade.objects.count() == 1 and OrderEvent.objects.count() == 1


def test_a_month_with_rows_and_no_archive_is_refused_and_nothing_is_deleted(capsys):
    book = Book()
    book.order(years_ago(9))
    newer = years_ago(8)
    book.order(newer)
    archive_month(month=Month.containing(newer))
    with pytest.raises(CommandError, match=r"purge_refused: .* has rows but no archive"):
        call_command("purge_archived", "--through", str(Month.containing(newer)))
    assert Order.objects.count() == 2


def test_a_month_inside_the_window_is_refused():
    Book().order(years_ago(6))
    with pytest.raises(PurgeRefused, match="inside the retention window"):
        purge_through(through=Month.containing(years_ago(6)))


def test_a_month_whose_archive_was_damaged_is_refused():
    book = Book()
    old = years_ago(8)
    book.order(old)
    month = Month.containing(old)
    archive_month(month=month)
    name = f"{month}/org-{book.org.pk}/trades.jsonl.gz"
    with open(archive_storage().path(name), "ab") as handle:
        handle.write(b"x")
    with pytest.raises(PurgeRefused) as caught:
        purge_through(through=month)
    assert caught.value.extra["file"] == name
    assert Trade.objects.count() == 1


def test_an_organisation_under_legal_hold_is_skipped_and_a_dry_run_deletes_nothing(capsys):
    held, free = Book("held"), Book("free")
    old = years_ago(8)
    held.order(old)
    free.order(old)
    LegalHold.objects.create(organisation=held.org, reason="investigation")
    month = Month.containing(old)
    archive_month(month=month)
    call_command("purge_archived", "--through", str(month), "--dry-run")
    assert "orders_order: would delete 1 rows" in capsys.readouterr().out
    assert Order.objects.count() == 2
    call_command("purge_archived", "--through", str(month))
    assert list(Order.objects.values_list("account__organisation", flat=True)) == [held.org.pk]


def test_an_order_whose_later_trade_is_not_purged_waits_for_that_month():
    book = Book()
    old = years_ago(8)
    order = book.order(old)
    Trade.objects.filter(order=order).update(executed_at=old + dt.timedelta(days=40))
    first = Month.containing(old)
    archive_month(month=first)
    archive_month(month=Month.containing(old + dt.timedelta(days=40)))
    summary = purge_through(through=first)
    assert summary.orders_waiting == 1 and Order.objects.count() == 1
    purge_through(through=Month.containing(old + dt.timedelta(days=40)))
    assert not Order.objects.exists() and not Trade.objects.exists()


def test_beat_archives_the_months_just_closed_once():
    book = Book()
    last_month = Month.containing(timezone.now()).previous()
    book.order(last_month.start + dt.timedelta(hours=1))
    assert archive_closed_months() == [
        str(p) for p in (last_month, last_month.previous(), last_month.previous().previous())
    ]
    assert archive_closed_months() == []

"""Deleting orders, order events and trades inside the retention window, or under a legal hold, is
refused by the database itself: through the ORM, through raw SQL, and (PostgreSQL) by TRUNCATE, as the
application role too. Rows outside the window and not held can be deleted."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from orders.models import Order, OrderEvent, Trade
from retention.errors import RetentionRefused
from retention.guard import refusal, retention_errors
from retention.models import LegalHold, RetentionPolicy
from tests.retention.book import Book, years_ago

pytestmark = pytest.mark.django_db


def _raw(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_enforces_the_configured_window():
    assert RetentionPolicy.objects.get().years == 7


@pytest.mark.parametrize("model", [Trade, OrderEvent, Order])
def test_deleting_a_recent_row_through_the_orm_is_refused(model):
    book = Book()
    fills = 0 if model is Order else 1  # an order with trades is PROTECTed before the database is asked
    book.order(years_ago(1), fills=fills)
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        model.objects.all().delete()  # an order's delete cascades to its events first
    assert refusal(caught.value) is not None
    assert "retention" in str(caught.value)
    assert Order.objects.count() == 1 and Trade.objects.count() == fills and OrderEvent.objects.count() == 1


@pytest.mark.parametrize("table", ["orders_trade", "orders_orderevent"])
def test_deleting_a_recent_row_through_raw_sql_is_refused(table):
    Book().order(years_ago(6.9))
    with pytest.raises(DatabaseError) as caught:
        _raw(f"DELETE FROM {table}")
    assert refusal(caught.value) is not None


def test_an_old_row_outside_the_window_can_be_deleted():
    book = Book()
    old = book.order(years_ago(7.2))
    recent = book.order(years_ago(6.8))
    _raw("DELETE FROM orders_trade WHERE order_id = %s", [old.pk])
    _raw("DELETE FROM orders_orderevent WHERE order_id = %s", [old.pk])
    _raw("DELETE FROM orders_order WHERE id = %s", [old.pk])
    assert list(Order.objects.values_list("pk", flat=True)) == [recent.pk]
    with pytest.raises(DatabaseError):
        _raw("DELETE FROM orders_trade WHERE order_id = %s", [recent.pk])


def test_a_legal_hold_refuses_deleting_even_old_rows_of_its_organisation_only():
    held, free = Book("held"), Book("free")
    held_order, free_order = held.order(years_ago(9)), free.order(years_ago(9))
    LegalHold.objects.create(organisation=held.org, reason="SEBI notice 42")
    with pytest.raises(DatabaseError) as caught:
        _raw("DELETE FROM orders_trade WHERE order_id = %s", [held_order.pk])
    assert "legal hold" in str(caught.value) or "retention" in str(caught.value)
    _raw("DELETE FROM orders_trade WHERE order_id = %s", [free_order.pk])
    LegalHold.objects.filter(organisation=held.org).update(active=False)
    _raw("DELETE FROM orders_trade WHERE order_id = %s", [held_order.pk])
    assert not Trade.objects.exists()


def test_without_a_policy_row_every_delete_is_refused():
    Book().order(years_ago(30))
    RetentionPolicy.objects.all().delete()
    with pytest.raises(DatabaseError):
        _raw("DELETE FROM orders_trade")


def test_the_database_refuses_a_window_below_five_years():
    with pytest.raises(DatabaseError), transaction.atomic():
        RetentionPolicy.objects.filter(pk=1).update(years=4)


def test_a_refusal_is_raised_as_a_clear_domain_error():
    Book().order(years_ago(1))
    with pytest.raises(RetentionRefused) as caught, retention_errors(), transaction.atomic():
        Trade.objects.all().delete()
    assert caught.value.code == "retention_refused" and caught.value.status == 409
    assert caught.value.message.startswith("Refused by the retention policy:")


def test_other_database_errors_pass_through_untouched():
    with pytest.raises(DatabaseError) as caught, retention_errors():
        _raw("SELECT * FROM no_such_table")
    assert not isinstance(caught.value, RetentionRefused)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # TRUNCATE needs no pending trigger events of the test's transaction
def test_truncate_is_refused_while_a_table_holds_rows_inside_the_window():
    Book().order(years_ago(1))
    for table in ("orders_trade", "orders_orderevent", "orders_order"):
        with pytest.raises(DatabaseError) as caught:
            _raw(f"TRUNCATE {table} CASCADE")
        assert caught.value.__cause__.sqlstate == "ZR001"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # TRUNCATE needs no pending trigger events of the test's transaction
def test_truncate_is_refused_under_a_legal_hold_even_for_old_rows():
    book = Book()
    book.order(years_ago(9))
    LegalHold.objects.create(organisation=book.org, reason="court order")
    with pytest.raises(DatabaseError) as caught:
        _raw("TRUNCATE orders_trade")
    assert caught.value.__cause__.sqlstate == "ZR001"


@pytest.mark.django_db(transaction=True)
def test_the_suite_can_still_flush_retained_rows_after_a_transactional_test():
    # The flush after this test must go around the triggers (tests/audit_flush.py), on both databases.
    Book().order(years_ago(1))
    with pytest.raises(DatabaseError):
        _raw("DELETE FROM orders_trade")
    assert Trade.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_and_the_flush_left_nothing_behind():
    assert not Order.objects.exists() and not Trade.objects.exists()
    assert RetentionPolicy.objects.get().years == 7  # re-written after the flush by post_migrate

"""The application role of deploy/postgres/app_role.sql can neither shorten the window, lift the
triggers nor skip them: only the owner role (migrate) and superusers can."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from retention.models import RetentionPolicy
from tests.retention.book import Book, years_ago

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_role():
    from tests.compliance.roles import drop_role, make_app_role

    role = make_app_role()
    yield role
    drop_role(role)


def _as_role(role: str, sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        cursor.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE retention_policy SET years = 5",
        "DELETE FROM retention_policy",
        "SET session_replication_role = replica",
        "ALTER TABLE orders_trade DISABLE TRIGGER retention_trade_no_delete",
        "DROP TRIGGER retention_trade_no_delete ON orders_trade",
        "CREATE OR REPLACE FUNCTION retention_trade_delete() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN OLD; END; $$",
        "TRUNCATE orders_trade",
    ],
)
def test_the_app_role_cannot_weaken_the_retention_triggers(app_role, sql):
    with pytest.raises(DatabaseError) as caught:
        _as_role(app_role, sql)
    assert caught.value.__cause__.sqlstate in {"42501", "42883"}  # insufficient privilege / must be owner
    assert RetentionPolicy.objects.get().years == 7


def test_the_app_role_is_refused_a_delete_inside_the_window_by_the_trigger(app_role):
    Book().order(years_ago(2))
    with pytest.raises(DatabaseError) as caught:
        _as_role(app_role, "DELETE FROM orders_trade")
    assert caught.value.__cause__.sqlstate == "ZR001"


def test_the_app_role_reads_the_policy_and_manages_holds(app_role):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        cursor.execute("SELECT years FROM retention_policy")
        assert cursor.fetchone() == (7,)
        cursor.execute("SELECT count(*) FROM retention_legalhold")

"""The audit table rejects changes in the database itself, whatever the client."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit.services import audit_record

pytestmark = pytest.mark.django_db


def _raw(sql: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "operation"),
    [
        ("UPDATE compliance_auditevent SET actor = 'someone:else'", "UPDATE"),
        ("DELETE FROM compliance_auditevent WHERE seq = 1", "DELETE"),
        ("TRUNCATE compliance_auditevent", "TRUNCATE"),
    ],
)
def test_raw_sql_update_delete_and_truncate_raise_on_postgresql(sql, operation):
    audit_record(actor=None, action="order.placed", payload={"qty": 1})
    with pytest.raises(DatabaseError) as caught:
        _raw(sql)
    assert caught.value.__cause__.sqlstate == "ZA001"
    assert f"append-only: {operation} on compliance_auditevent" in str(caught.value)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), min(actor) FROM compliance_auditevent")
        assert cursor.fetchone() == (1, "system")


def test_raw_sql_update_and_delete_raise_on_the_configured_database():
    audit_record(actor=None, action="order.placed", payload={"qty": 1})
    for sql in ("UPDATE compliance_auditevent SET actor = 'someone:else'", "DELETE FROM compliance_auditevent"):
        with pytest.raises(DatabaseError, match="append-only"):
            _raw(sql)


def test_raw_sql_update_and_delete_raise_on_sqlite(tmp_path: Path):
    # Runs in every environment, CI included: the migrations build a real SQLite file in a subprocess.
    database = tmp_path / "audit.sqlite3"
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(DATABASE_URL=f"sqlite:///{database}", VAR_DIR=str(tmp_path / "var"))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from audit.services import audit_record; audit_record(actor=None, action='order.placed', payload={})",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=60,
    )
    db = sqlite3.connect(database)
    try:
        for sql, operation in (
            ("UPDATE compliance_auditevent SET actor = 'someone:else'", "UPDATE"),
            ("DELETE FROM compliance_auditevent", "DELETE"),
        ):
            with pytest.raises(sqlite3.IntegrityError, match=f"append-only: {operation}"):
                db.execute(sql)
        assert db.execute("SELECT count(*), min(actor) FROM compliance_auditevent").fetchone() == (1, "system")
    finally:
        db.close()

"""Attacks on the audit trail from the database side, with the application's role and as a superuser.

Each is refused by the database (the roles of deploy/postgres/, the triggers, the append functions) or
named by ``manage.py verify_audit`` (keyed links, signed checkpoints) or ``manage.py check`` (the
definitions of the triggers and functions), at the sequence number where it happened.
"""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from audit import checkpoints
from audit.chain import GENESIS_HASH, body_digest, event_hash, link_hash
from audit.checks import check_audit_triggers
from audit.models import AuditEvent
from audit.services import audit_record, checkpoint_create
from tests.compliance.roles import SCRIPT, psql, unique_role

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

INSERT_ARGS = "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"


def _verify() -> str:
    """Run verify_audit (checkpoints included, the default); return its failures, or "" if it passed."""
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", "--no-progress", stdout=out, stderr=err)
    except CommandError:
        return err.getvalue()
    return ""


def _record(count: int) -> int:
    """Append ``count`` events to one chain in one transaction; return the chain."""
    with transaction.atomic():
        events = [audit_record(actor="system:test", action="order.placed", payload={"n": n}) for n in range(count)]
    assert [e.seq for e in events] == list(range(1, count + 1))
    return events[0].chain


def _forged(**columns) -> dict:
    """Columns of an event linked the way someone without the audit key can: plain SHA-256."""
    row = {
        "created_at": timezone.now(),
        "actor": "user:1",
        "actor_name": "mallory",
        "action": "order.cancelled",
        "target_type": "",
        "target_id": "",
        "payload": "{}",
        "ip": "",
        "request_id": "",
        "key_id": "a1",
        **columns,
    }
    fields = {k: v for k, v in row.items() if k not in {"hash", "key_id"}}
    row["hash"] = event_hash(key=None, **fields)
    return row


def _insert_values(row: dict) -> list:
    return [
        row["chain"],
        row["seq"],
        row["prev_hash"],
        row["hash"],
        row["key_id"],
        row["created_at"],
        row["actor"],
        row["actor_name"],
        row["action"],
        row["target_type"],
        row["target_id"],
        row["payload"],
        row["ip"],
        row["request_id"],
    ]


def _as_superuser(*statements: tuple[str, list]) -> None:
    """Run SQL with the audit triggers disabled, as a database superuser (or the table's owner) can."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent DISABLE TRIGGER USER")
        try:
            for sql, params in statements:
                cursor.execute(sql, params)
        finally:
            cursor.execute("ALTER TABLE compliance_auditevent ENABLE TRIGGER USER")


def _superuser_insert(row: dict) -> tuple[str, list]:
    return (
        "INSERT INTO compliance_auditevent (chain, seq, prev_hash, hash, key_id, created_at, actor, actor_name,"
        f" action, target_type, target_id, payload, ip, request_id) VALUES ({INSERT_ARGS})",
        _insert_values(row),
    )


def _rechained(chain: int, rows: list[AuditEvent], previous: str) -> list[tuple[str, list]]:
    """UPDATEs that re-link ``rows`` from ``previous`` on, with plain SHA-256 (no key)."""
    statements = []
    for row in rows:
        digest = body_digest(
            created_at=row.created_at,
            actor=row.actor,
            actor_name=row.actor_name,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            payload=row.payload,
            ip=row.ip,
            request_id=row.request_id,
        )
        new_hash = link_hash(previous, chain, row.seq, digest, None)
        statements.append(
            (
                "UPDATE compliance_auditevent SET payload = %s, prev_hash = %s, hash = %s, seq = %s WHERE id = %s",
                [row.payload, previous, new_hash, row.seq, row.id],
            )
        )
        previous = new_hash
    return statements


# --- as the application's role ------------------------------------------------------------------------


def test_the_app_role_cannot_insert_a_forged_event_with_a_recomputed_hash(app_role):
    chain = _record(3)
    head = AuditEvent.objects.get(chain=chain, seq=3)
    row = _forged(chain=chain, seq=4, prev_hash=head.hash)
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        cursor.execute(*_superuser_insert(row))
    assert caught.value.__cause__.sqlstate == "42501"  # insufficient_privilege
    assert AuditEvent.objects.count() == 3


def test_a_forged_event_appended_through_the_functions_is_named_by_verify_audit(app_role):
    chain = _record(3)
    checkpoint_create()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        cursor.execute("SELECT o_chain, o_seq, o_hash FROM compliance_audit_head(%s)", [chain])
        locked, head_seq, head_hash = cursor.fetchone()
        row = _forged(chain=locked, seq=head_seq + 1, prev_hash=head_hash)
        cursor.execute(f"SELECT compliance_audit_insert({INSERT_ARGS})", _insert_values(row))
        assert cursor.fetchone()[0] is not None
    assert f"chain {locked} sequence {head_seq + 1}: hash_mismatch" in _verify()


def test_the_append_function_refuses_an_unkeyed_link_a_chain_out_of_range_and_a_fork(app_role, settings):
    chain = _record(2)
    head = AuditEvent.objects.get(chain=chain, seq=2)
    cases = [
        (_forged(chain=settings.AUDIT_CHAINS + 1, seq=1, prev_hash=GENESIS_HASH), "outside the configured chains"),
        (_forged(chain=0, seq=1, prev_hash=GENESIS_HASH), "outside the configured chains"),
        (_forged(chain=chain, seq=3, prev_hash=head.hash, key_id=""), "needs a key id"),
    ]
    for row, message in cases:
        with pytest.raises(DatabaseError, match=message) as caught, transaction.atomic(), connection.cursor() as cur:
            cur.execute(f'SET LOCAL ROLE "{app_role}"')
            cur.execute(f"SELECT compliance_audit_insert({INSERT_ARGS})", _insert_values(row))
        assert caught.value.__cause__.sqlstate == "ZA002"
    # Not the head's successor (a fork at 2, a gap at 4): nothing is inserted.
    for seq, prev_hash in ((2, AuditEvent.objects.get(chain=chain, seq=1).hash), (4, head.hash), (3, GENESIS_HASH)):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'SET LOCAL ROLE "{app_role}"')
            row = _forged(chain=chain, seq=seq, prev_hash=prev_hash)
            cursor.execute(f"SELECT compliance_audit_insert({INSERT_ARGS})", _insert_values(row))
            assert cursor.fetchone() == (None,)
    assert AuditEvent.objects.count() == 2


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE compliance_auditevent DISABLE TRIGGER USER",
        "ALTER TABLE compliance_auditevent DISABLE TRIGGER compliance_auditevent_no_update_delete",
        "CREATE OR REPLACE FUNCTION compliance_auditevent_reject_change() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN OLD; END $$",
        "CREATE OR REPLACE FUNCTION compliance_audit_chain_limit() RETURNS integer LANGUAGE sql AS $$ SELECT 64 $$",
        "SELECT compliance_audit_chain_limit()",
        "SET session_replication_role = replica",
    ],
)
def test_the_app_role_cannot_switch_off_or_replace_the_defences(app_role, sql):
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        cursor.execute(sql)
    assert caught.value.__cause__.sqlstate == "42501"


def test_app_role_sql_refuses_a_role_that_can_act_as_the_owner_of_the_audit_trail():
    role = unique_role("terminal_owner_member")
    psql("-c", f'CREATE ROLE "{role}" LOGIN; GRANT "{connection.settings_dict["USER"]}" TO "{role}";')
    try:
        result = psql("-v", f"app_role={role}", "-f", str(SCRIPT), check=False)
        assert result.returncode != 0
        assert "can act as" in result.stderr and "owns the audit trail" in result.stderr
    finally:
        psql("-c", f'DROP ROLE "{role}";')


# --- as a superuser (or the owner), who can switch the triggers off -------------------------------------


def test_a_forged_append_with_a_recomputed_hash_is_named_by_verify_audit():
    chain = _record(3)
    checkpoint_create()
    head = AuditEvent.objects.get(chain=chain, seq=3)
    _as_superuser(_superuser_insert(_forged(chain=chain, seq=4, prev_hash=head.hash)))
    assert f"chain {chain} sequence 4: hash_mismatch" in _verify()


def test_a_forged_unkeyed_append_is_named_by_verify_audit():
    chain = _record(3)
    checkpoint_create()
    head = AuditEvent.objects.get(chain=chain, seq=3)
    _as_superuser(_superuser_insert(_forged(chain=chain, seq=4, prev_hash=head.hash, key_id="")))
    assert f"chain {chain} sequence 4: unkeyed" in _verify()


def test_a_brand_new_chain_is_named_by_verify_audit(settings):
    _record(2)
    checkpoint_create()
    new_chain = settings.AUDIT_CHAINS + 5
    _as_superuser(_superuser_insert(_forged(chain=new_chain, seq=1, prev_hash=GENESIS_HASH)))
    assert f"chain {new_chain} sequence 1: hash_mismatch" in _verify()


def test_an_edited_row_re_linked_onwards_is_named_at_its_sequence():
    chain = _record(6)
    checkpoint_create()
    rows = list(AuditEvent.objects.filter(chain=chain, seq__gte=4).order_by("seq"))
    rows[0].payload = '{"n":999}'
    _as_superuser(*_rechained(chain, rows, AuditEvent.objects.get(chain=chain, seq=3).hash))
    assert f"chain {chain} sequence 4: hash_mismatch" in _verify()


def test_a_deleted_middle_row_is_named_whether_or_not_the_rest_is_renumbered():
    chain = _record(6)
    checkpoint_create()
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s AND seq = 3", [chain]))
    assert f"chain {chain} sequence 3: gap" in _verify()
    rows = list(AuditEvent.objects.filter(chain=chain, seq__gte=4).order_by("seq"))
    for row in rows:
        row.seq -= 1
    _as_superuser(*_rechained(chain, rows, AuditEvent.objects.get(chain=chain, seq=2).hash))
    assert f"chain {chain} sequence 3: hash_mismatch" in _verify()


def test_a_truncated_tail_is_named_at_its_first_missing_sequence():
    chain = _record(5)
    checkpoint_create()
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s AND seq >= 4", [chain]))
    failures = _verify()
    assert f"chain {chain} sequence 4: tail_missing: the chain ends at sequence 3" in failures


def _record_on_another_connection() -> AuditEvent:
    events: list[AuditEvent] = []

    def append() -> None:
        try:
            events.append(audit_record(actor="system:test", action="order.placed", payload={}))
        finally:
            connections.close_all()

    worker = threading.Thread(target=append)
    worker.start()
    worker.join()
    return events[0]


def test_a_deleted_chain_is_named():
    with transaction.atomic():
        chain = audit_record(actor="system:test", action="order.placed", payload={}).chain
        other = _record_on_another_connection()  # this transaction holds chain: it goes to another
    assert other.chain != chain
    checkpoint_create()
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s", [chain]))
    assert f"chain {chain} sequence 1: chain_missing" in _verify()


def test_a_chain_re_written_from_a_sequence_onwards_is_named_at_that_sequence():
    chain = _record(6)
    checkpoint_create()
    rows = list(AuditEvent.objects.filter(chain=chain, seq__gte=3).order_by("seq"))
    for row in rows:
        row.payload = '{"rewritten":true}'
    _as_superuser(*_rechained(chain, rows, AuditEvent.objects.get(chain=chain, seq=2).hash))
    assert f"chain {chain} sequence 3: hash_mismatch" in _verify()
    # The same, passed off as links from before keyed ones: no checkpoint vouches for them.
    _as_superuser(("UPDATE compliance_auditevent SET key_id = '' WHERE chain = %s AND seq >= 3", [chain]))
    assert f"chain {chain} sequence 3: unkeyed" in _verify()


def test_deleted_checkpoints_are_named(checkpoint_dir, settings):
    _record(3)
    assert _verify() != ""  # a non-empty trail and no checkpoint
    assert "there is no signed checkpoint of a non-empty audit trail" in _verify()
    # An older checkpoint is left and the newer ones are removed: the newest left is too old.
    allowed = settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS + settings.AUDIT_CHECKPOINT_GRACE_SECONDS
    heads = {e.chain: (e.seq, e.hash) for e in AuditEvent.objects.order_by("seq")}
    checkpoints.write_checkpoint(heads=heads, events=3, now=timezone.now() - dt.timedelta(seconds=allowed + 60))
    newest = checkpoint_create(force=True)
    assert _verify() == ""
    (checkpoint_dir / newest.name).unlink()
    assert f"more than the {allowed} s allowed (checkpoints stopped, or the newest were removed)" in _verify()


def _restoring(function: str):
    """Keep a function's definition and put it back after the test has replaced it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(%s::regprocedure)", [function])
        (definition,) = cursor.fetchone()

    def restore() -> None:
        with connection.cursor() as cursor:
            cursor.execute(definition)

    return restore


@pytest.mark.parametrize(
    ("function", "replacement"),
    [
        (
            "compliance_auditevent_reject_change()",
            "CREATE OR REPLACE FUNCTION compliance_auditevent_reject_change() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
        ),
        (
            "compliance_audit_insert(integer, bigint, text, text, text, timestamptz, text, text, text, text, text,"
            " text, text, text)",
            "CREATE OR REPLACE FUNCTION compliance_audit_insert(p_chain integer, p_seq bigint, p_prev_hash text,"
            " p_hash text, p_key_id text, p_created_at timestamptz, p_actor text, p_actor_name text,"
            " p_action text, p_target_type text, p_target_id text, p_payload text, p_ip text, p_request_id text)"
            " RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT NULL::bigint $$",
        ),
    ],
)
def test_a_replaced_trigger_or_append_function_is_named_by_the_system_check(function, replacement):
    assert check_audit_triggers(None, databases=["default"]) == []
    restore = _restoring(function)
    try:
        with connection.cursor() as cursor:
            cursor.execute(replacement)
        (error,) = check_audit_triggers(None, databases=["default"])
        assert error.id == "compliance.E003"
        assert f"altered: {function.split('(')[0]}" in error.msg
    finally:
        restore()
    assert check_audit_triggers(None, databases=["default"]) == []


def test_an_added_trigger_is_named_by_the_system_check():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER zz_rewrite BEFORE INSERT ON compliance_auditevent"
            " FOR EACH ROW EXECUTE FUNCTION compliance_auditevent_reject_change()"
        )
    try:
        (error,) = check_audit_triggers(None, databases=["default"])
        assert error.id == "compliance.E003" and "added: zz_rewrite" in error.msg
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER zz_rewrite ON compliance_auditevent")

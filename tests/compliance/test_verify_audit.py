"""verify_audit proves the chain, and finds tampering that bypassed the database's own defences."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from prometheus_client import REGISTRY

from compliance.chain import event_hash
from compliance.models import AuditEvent
from compliance.services import audit_record, checkpoint_create
from terminal.lib.ed25519 import public_key_text

pytestmark = pytest.mark.django_db


def _verify(*args: str) -> tuple[str, str]:
    """Run verify_audit; return (stdout, stderr). Raises CommandError (exit status 1) on a break."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as exc:
        exc.stderr = err.getvalue()
        raise
    return out.getvalue(), err.getvalue()


def _record(count: int) -> list[AuditEvent]:
    # One test transaction keeps one chain, so the events are 1..count of that chain.
    return [audit_record(actor="system:test", action="order.placed", payload={"n": n}) for n in range(count)]


def _as_superuser(*statements: tuple[str, list]) -> None:
    """Run SQL with the audit triggers disabled, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("ALTER TABLE compliance_auditevent ENABLE TRIGGER USER")


def _failure(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        _verify(*args)
    return caught.value.stderr


def test_verify_audit_on_an_empty_table_exits_0_and_says_so():
    out, _ = _verify()
    assert "OK: the audit trail is empty; nothing to verify." in out


def test_an_intact_trail_is_verified_with_its_count():
    _record(5)
    out, _ = _verify("--checkpoints")
    assert "OK: 5 events verified in 1 chain(s); 0 signed checkpoint(s) match." in out
    assert REGISTRY.get_sample_value("terminal_audit_last_verification_ok") == 1
    assert REGISTRY.get_sample_value("terminal_audit_last_verification_timestamp_seconds") > 0


@pytest.mark.postgres
def test_a_row_altered_with_triggers_disabled_is_reported_with_its_exact_sequence():
    events = _record(6)
    chain = events[0].chain
    _as_superuser(("UPDATE compliance_auditevent SET payload = %s WHERE chain = %s AND seq = 4", ['{"n":999}', chain]))
    stderr = _failure()
    assert f"chain {chain} sequence 4: hash_mismatch" in stderr
    assert REGISTRY.get_sample_value("terminal_audit_last_verification_ok") == 0


@pytest.mark.postgres
def test_a_deleted_middle_row_is_reported_as_a_gap():
    events = _record(6)
    chain = events[0].chain
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s AND seq = 3", [chain]))
    assert f"chain {chain} sequence 3: gap: sequence 3 is missing (the next event is 4)" in _failure()


@pytest.mark.postgres
def test_two_swapped_rows_are_reported_as_reordered():
    events = _record(6)
    chain = events[0].chain
    _as_superuser(
        ("UPDATE compliance_auditevent SET seq = -2 WHERE chain = %s AND seq = 2", [chain]),
        ("UPDATE compliance_auditevent SET seq = 2 WHERE chain = %s AND seq = 3", [chain]),
        ("UPDATE compliance_auditevent SET seq = 3 WHERE chain = %s AND seq = -2", [chain]),
    )
    assert f"chain {chain} sequence 2: reordered: this row was written as sequence 3" in _failure()


@pytest.mark.postgres
def test_a_dropped_tail_is_reported_against_the_last_checkpoint():
    events = _record(5)
    chain = events[0].chain
    assert checkpoint_create() is not None
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s AND seq >= 4", [chain]))
    out, _ = _verify()  # what is left is a sound chain; only the checkpoint can tell
    assert "OK: 3 events verified" in out
    stderr = _failure("--checkpoints")
    assert f"chain {chain} sequence 4: tail_missing: the chain ends at sequence 3" in stderr
    assert "has 5" in stderr


@pytest.mark.postgres
def test_a_chain_rewritten_from_a_row_onwards_is_reported_against_the_checkpoint():
    events = _record(5)
    chain = events[0].chain
    checkpoint_create()
    # Rewrite event 3 and re-hash it and every later event, as someone with full access could.
    rows = list(AuditEvent.objects.filter(chain=chain).order_by("seq"))
    previous = rows[1].hash
    statements = []
    for row in rows[2:]:
        if row.seq == 3:
            row.payload = '{"n":999}'
        row.prev_hash = previous
        row.hash = event_hash(
            prev_hash=row.prev_hash,
            chain=row.chain,
            seq=row.seq,
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
        previous = row.hash
        statements.append(
            (
                "UPDATE compliance_auditevent SET payload = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [row.payload, row.prev_hash, row.hash, row.id],
            )
        )
    _as_superuser(*statements)
    assert "OK: 5 events verified" in _verify()[0]
    assert f"chain {chain} sequence 5: checkpoint_mismatch" in _failure("--checkpoints")


def test_a_checkpoint_altered_by_one_byte_fails_its_signature(checkpoint_dir):
    _record(3)
    checkpoint = checkpoint_create()
    path = checkpoint_dir / checkpoint.name
    document = json.loads(path.read_text())
    document["events"] += 1
    path.write_text(json.dumps(document))
    assert f"checkpoint {checkpoint.name} has an invalid signature" in _failure("--checkpoints")


def test_a_checkpoint_signed_by_a_retired_key_verifies_only_while_that_key_is_trusted(settings):
    _record(3)
    checkpoint = checkpoint_create()
    retired = settings.AUDIT_SIGNING_KEY
    new_key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = base64.b64encode(new_key.private_bytes_raw()).decode()
    assert f"checkpoint {checkpoint.name} is signed by unknown key" in _failure("--checkpoints")

    from terminal.lib.ed25519 import load_private_key

    settings.AUDIT_VERIFY_KEYS = [public_key_text(load_private_key(retired).public_key())]
    assert "1 signed checkpoint(s) match" in _verify("--checkpoints")[0]


def test_since_and_until_verify_only_that_range_of_each_chain():
    _record(6)
    out, _ = _verify("--since", "3", "--until", "5")
    assert "OK: 3 events verified" in out


def test_bad_ranges_are_refused():
    with pytest.raises(CommandError, match="--since must not be greater than --until"):
        _verify("--since", "5", "--until", "2")
    with pytest.raises(CommandError, match="--since must be a sequence number of at least 1"):
        _verify("--since", "0")

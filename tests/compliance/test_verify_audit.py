"""verify_audit proves the chain, and finds tampering that bypassed the database's own defences."""

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.chain import GENESIS_HASH, UNKEYED, event_hash
from audit.checkpoints import write_checkpoint
from audit.models import AuditEvent
from audit.services import audit_record, checkpoint_create
from core.ed25519 import public_key_text

pytestmark = pytest.mark.django_db

_HASHED = (
    "prev_hash",
    "chain",
    "seq",
    "created_at",
    "actor",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "payload",
    "ip",
    "request_id",
)


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
    checkpoint_create()
    out, _ = _verify()
    assert "OK: 5 events verified in 1 chain(s); 1 signed checkpoint(s) match." in out
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
def test_a_dropped_tail_is_seen_only_with_the_checkpoints_which_are_checked_by_default():
    events = _record(5)
    chain = events[0].chain
    assert checkpoint_create() is not None
    _as_superuser(("DELETE FROM compliance_auditevent WHERE chain = %s AND seq >= 4", [chain]))
    out, err = _verify("--no-checkpoints")  # what is left is a sound chain; only the checkpoint can tell
    assert "OK: 3 events verified" in out
    assert "WARNING checkpoints skipped (--no-checkpoints)" in err
    stderr = _failure()
    assert f"chain {chain} sequence 4: tail_missing: the chain ends at sequence 3" in stderr
    assert "has 5" in stderr


def test_a_non_empty_trail_without_a_recent_checkpoint_fails(settings):
    events = _record(2)
    assert "FAIL there is no signed checkpoint of a non-empty audit trail" in _failure()
    allowed = settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS + settings.AUDIT_CHECKPOINT_GRACE_SECONDS
    heads = {events[0].chain: (2, events[-1].hash)}
    write_checkpoint(heads=heads, events=2, now=timezone.now() - dt.timedelta(seconds=allowed + 5))
    assert f"more than the {allowed} s allowed" in _failure()
    write_checkpoint(heads=heads, events=2, now=timezone.now() - dt.timedelta(seconds=allowed - 30))
    assert "OK: 2 events verified in 1 chain(s); 2 signed checkpoint(s) match." in _verify()[0]
    assert REGISTRY.get_sample_value("terminal_audit_last_verification_ok") == 1


def test_events_linked_before_keyed_links_verify_only_where_a_checkpoint_vouches_for_them():
    # Rows as compliance migration 0005 found them: an empty key id and plain SHA-256 links.
    previous = GENESIS_HASH
    for seq in (1, 2, 3):
        row = AuditEvent(chain=1, seq=seq, created_at=timezone.now(), actor="system", action="order.placed")
        row.payload, row.prev_hash, row.key_id = "{}", previous, UNKEYED
        row.hash = event_hash(key=None, **{f: getattr(row, f) for f in _HASHED})
        row.save(force_insert=True)
        previous = row.hash
        if seq == 2:
            checkpoint_create()
    assert "chain 1 sequence 3: unkeyed" in _failure()
    checkpoint_create()
    assert "OK: 3 events verified" in _verify()[0]


def test_events_linked_with_a_retired_key_verify_while_it_is_in_audit_hmac_keys(settings):
    old_events = _record(2)
    old_id = settings.AUDIT_HMAC_KEY_ID
    settings.AUDIT_HMAC_KEYS = {**settings.AUDIT_HMAC_KEYS, "b2": b"\x07" * 32}
    settings.AUDIT_HMAC_KEY_ID = "b2"
    new_event = audit_record(actor=None, action="order.placed", payload={})
    assert (new_event.key_id, new_event.seq, old_events[0].key_id) == ("b2", 3, old_id)
    checkpoint_create()
    assert "OK: 3 events verified" in _verify()[0]
    settings.AUDIT_HMAC_KEYS = {"b2": b"\x07" * 32}
    assert f"sequence 1: unknown_key: linked with key '{old_id}', which is not in AUDIT_HMAC_KEYS" in _failure()


def test_a_checkpoint_altered_by_one_byte_fails_its_signature(checkpoint_dir):
    _record(3)
    checkpoint = checkpoint_create()
    path = checkpoint_dir / checkpoint.name
    document = json.loads(path.read_text())
    document["events"] += 1
    path.write_text(json.dumps(document))
    assert f"checkpoint {checkpoint.name} has an invalid signature" in _failure()


def test_a_checkpoint_signed_by_a_retired_key_verifies_only_while_that_key_is_trusted(settings):
    _record(3)
    checkpoint = checkpoint_create()
    retired = settings.AUDIT_SIGNING_KEY
    new_key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = base64.b64encode(new_key.private_bytes_raw()).decode()
    assert f"checkpoint {checkpoint.name} is signed by unknown key" in _failure("--checkpoints")

    from core.ed25519 import load_private_key

    settings.AUDIT_VERIFY_KEYS = [public_key_text(load_private_key(retired).public_key())]
    assert "1 signed checkpoint(s) match" in _verify("--checkpoints")[0]


def test_since_and_until_verify_only_that_range_of_each_chain():
    _record(6)
    checkpoint_create()
    out, _ = _verify("--since", "3", "--until", "5")
    assert "OK: 3 events verified" in out


def test_bad_ranges_are_refused():
    with pytest.raises(CommandError, match="--since must not be greater than --until"):
        _verify("--since", "5", "--until", "2")
    with pytest.raises(CommandError, match="--since must be a sequence number of at least 1"):
        _verify("--since", "0")
    with pytest.raises(CommandError, match="contradict"):
        _verify("--checkpoints", "--no-checkpoints")

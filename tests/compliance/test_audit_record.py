import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from accounts.models import User
from audit.chain import GENESIS_HASH, event_hash, key_for
from audit.errors import AuditInputError
from audit.models import AuditEvent
from audit.services import audit_record
from core.request_id import reset_request_id, set_request_id

pytestmark = pytest.mark.django_db


def _recomputed(event: AuditEvent) -> str:
    return event_hash(
        key=key_for(event.key_id),
        prev_hash=event.prev_hash,
        chain=event.chain,
        seq=event.seq,
        created_at=event.created_at,
        actor=event.actor,
        actor_name=event.actor_name,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        payload=event.payload,
        ip=event.ip,
        request_id=event.request_id,
    )


def test_one_transaction_appends_a_gapless_chain_from_the_genesis_hash():
    # The test runs in one transaction, which keeps the chain it first took.
    first = audit_record(actor=None, action="system.started", payload={})
    second = audit_record(actor="system:rms", action="rms.rejected", payload={"reason": "kill_switch"})
    third = audit_record(actor="system", action="system.stopped", payload={})
    assert first.chain == second.chain == third.chain
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    for event in AuditEvent.objects.all():
        assert _recomputed(event) == event.hash


def test_the_stored_row_hashes_to_what_was_returned():
    event = audit_record(actor=None, action="order.placed", payload={"price": Decimal("101.05")})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.created_at == event.created_at
    assert _recomputed(stored) == event.hash == stored.hash


def test_a_user_actor_is_recorded_with_id_and_username():
    user = User.objects.create_user("alice", password="x-long-password-1")
    event = audit_record(actor=user, action="auth.login", payload={}, ip="2001:DB8:0::1")
    assert (event.actor, event.actor_name) == (f"user:{user.pk}", "alice")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.ip == "2001:db8::1"
    assert _recomputed(stored) == stored.hash


def test_an_anonymous_actor_is_recorded_as_anonymous():
    event = audit_record(actor=AnonymousUser(), action="auth.login_failed", payload={"username": "bob"})
    assert event.actor == "anonymous"


def test_a_model_target_is_recorded_by_label_and_primary_key():
    user = User.objects.create_user("carol", password="x-long-password-1")
    event = audit_record(actor=None, action="auth.locked", target=user, payload={})
    assert (event.target_type, event.target_id) == ("accounts.user", str(user.pk))
    pair = audit_record(actor=None, action="order.placed", target=("orders.order", 42), payload={})
    assert (pair.target_type, pair.target_id) == ("orders.order", "42")


def test_the_payload_is_stored_as_canonical_json():
    when = dt.datetime(2026, 11, 25, 9, 15, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    event = audit_record(
        actor=None,
        action="order.placed",
        payload={"z": 1, "price": Decimal("2500.50"), "at": when, "id": ident, "legs": ("a", "ü")},
    )
    assert event.payload == (
        '{"at":"2026-11-25T03:45:00.123456Z","id":"12345678-1234-5678-1234-567812345678",'
        '"legs":["a","ü"],"price":"2500.50","z":1}'
    )


def test_the_request_id_defaults_to_the_current_request():
    token = set_request_id("req-0123456789")
    try:
        event = audit_record(actor=None, action="order.placed", payload={})
    finally:
        reset_request_id(token)
    assert event.request_id == "req-0123456789"
    assert audit_record(actor=None, action="order.placed", payload={}, request_id="given-id").request_id == "given-id"


def test_an_event_inside_a_rolled_back_transaction_leaves_no_gap():
    before = audit_record(actor=None, action="order.placed", payload={})
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="order.placed", payload={})
        raise RuntimeError("business failure")
    after = audit_record(actor=None, action="order.placed", payload={})
    assert (after.chain, after.seq, after.prev_hash) == (before.chain, 2, before.hash)
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"when": dt.datetime(2026, 1, 1, 9, 15)}, "$.when: datetime without a time zone"),
        ({"tags": {"a", "b"}}, "$.tags: a set is not JSON-serialisable"),
        ({"blob": b"\x00"}, "$.blob: a bytes is not JSON-serialisable"),
        ({"price": float("nan")}, "$.price: nan is not a finite number"),
        ({"legs": [{"qty": object()}]}, "$.legs[0].qty: a object is not JSON-serialisable"),
        ({1: "x"}, "key 1 is a int"),
        (["not", "a", "mapping"], "payload must be a mapping"),
    ],
)
def test_a_payload_that_is_not_json_serialisable_is_rejected_before_anything_is_written(payload, fragment):
    with pytest.raises(AuditInputError) as caught:
        audit_record(actor=None, action="order.placed", payload=payload)
    assert fragment in caught.value.message
    assert caught.value.code == "audit_invalid"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "Order Placed"}, "action"),
        ({"action": "order"}, "action"),
        ({"actor": "System RMS"}, "actor"),
        ({"actor": 42}, "actor"),
        ({"ip": "10.0.0.300"}, "ip"),
        ({"target": "orders.order:1"}, "target"),
        ({"request_id": "x" * 129}, "request_id"),
    ],
)
def test_a_bad_actor_action_target_or_ip_is_rejected_before_anything_is_written(kwargs, field):
    arguments = {"actor": None, "action": "order.placed", "payload": {}, **kwargs}
    with pytest.raises(AuditInputError) as caught:
        audit_record(**arguments)
    assert caught.value.extra["field"] == field
    assert not AuditEvent.objects.exists()


def test_committed_events_are_counted_by_action_prefix(django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def count() -> float:
        return REGISTRY.get_sample_value("terminal_audit_events_total", {"action_prefix": "kill"}) or 0.0

    before = count()
    with django_capture_on_commit_callbacks(execute=True):
        event = audit_record(actor=None, action="kill.switch_engaged", payload={})
    assert count() == before + 1
    assert REGISTRY.get_sample_value("terminal_audit_chain_length", {"chain": str(event.chain)}) == event.seq


def test_each_link_is_an_hmac_under_the_current_key_which_the_row_names(settings):
    import hashlib
    import hmac

    from audit.chain import body_digest

    first = audit_record(actor=None, action="order.placed", payload={"qty": 1})
    second = AuditEvent.objects.get(pk=audit_record(actor=None, action="order.placed", payload={"qty": 2}).pk)
    assert second.key_id == settings.AUDIT_HMAC_KEY_ID != ""
    digest = body_digest(
        created_at=second.created_at,
        actor=second.actor,
        actor_name=second.actor_name,
        action=second.action,
        target_type=second.target_type,
        target_id=second.target_id,
        payload=second.payload,
        ip=second.ip,
        request_id=second.request_id,
    )
    message = f"{first.hash}|{second.chain}|{second.seq}|{digest}".encode()
    key = settings.AUDIT_HMAC_KEYS[settings.AUDIT_HMAC_KEY_ID]
    assert second.hash == hmac.new(key, message, hashlib.sha256).hexdigest()
    assert second.hash != hashlib.sha256(message).hexdigest()

import json
from io import StringIO

import pytest
from django.core.management import call_command

from compliance.checkpoints import checkpoint_names, read_checkpoint
from compliance.services import audit_record
from compliance.tasks import audit_checkpoint
from terminal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_the_command_signs_every_chain_head_into_the_checkpoint_storage(checkpoint_dir):
    events = [audit_record(actor=None, action="order.placed", payload={"n": n}) for n in range(3)]
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "Wrote checkpoint-" in out.getvalue() and "3 events" in out.getvalue()
    (name,) = checkpoint_names()
    checkpoint = read_checkpoint(name)
    assert checkpoint.heads == {events[-1].chain: (3, events[-1].hash)}
    document = json.loads((checkpoint_dir / name).read_text())
    assert set(document) == {"format", "created_at", "events", "heads", "key_id", "signature"}


def test_the_periodic_task_writes_a_checkpoint_only_when_the_heads_moved():
    audit_record(actor=None, action="order.placed", payload={})
    first = audit_checkpoint()
    assert first is not None
    assert audit_checkpoint() is None
    audit_record(actor=None, action="order.placed", payload={})
    assert audit_checkpoint() not in {None, first}
    assert len(checkpoint_names()) == 2


def test_the_beat_schedule_runs_the_checkpoint_task():
    entries = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert "compliance.tasks.audit_checkpoint" in entries


def test_an_empty_trail_can_be_checkpointed_on_demand():
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "Nothing new" not in out.getvalue()
    assert "0 events (empty trail)" in out.getvalue()

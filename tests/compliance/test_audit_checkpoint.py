import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.checkpoints import checkpoint_names, checkpoint_storage, read_checkpoint, write_checkpoint
from audit.services import audit_record
from audit.tasks import audit_checkpoint
from config.celery import app as celery_app

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


def test_the_periodic_task_writes_a_checkpoint_when_the_heads_moved_or_the_newest_is_half_an_interval_old(settings):
    audit_record(actor=None, action="order.placed", payload={})
    first = audit_checkpoint()
    assert first is not None
    assert audit_checkpoint() is None  # nothing moved, and the newest was signed just now
    audit_record(actor=None, action="order.placed", payload={})
    assert audit_checkpoint() not in {None, first}
    assert len(checkpoint_names()) == 2
    # A quiet trail still gets one each interval: verify_audit needs a recent one.
    newest = read_checkpoint(checkpoint_names()[-1])
    earlier = timezone.now() - dt.timedelta(seconds=settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS / 2 + 1)
    for name in checkpoint_names():
        checkpoint_storage().delete(name)
    write_checkpoint(heads=newest.heads, events=newest.events, now=earlier)
    assert audit_checkpoint() is not None
    assert len(checkpoint_names()) == 2


def test_the_beat_schedule_runs_the_checkpoint_task_every_interval(settings):
    schedules = {entry["task"]: entry["schedule"] for entry in celery_app.conf.beat_schedule.values()}
    assert schedules["audit.tasks.audit_checkpoint"] == settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS == 60


def test_an_empty_trail_can_be_checkpointed_on_demand():
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "Nothing new" not in out.getvalue()
    assert "0 events (empty trail)" in out.getvalue()

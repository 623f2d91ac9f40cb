"""A closed month is archived once, as gzip JSON Lines per organisation with a signed manifest, to the
filesystem or to S3 (the local S3 server), and verifies; nothing is ever overwritten."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from audit.checkpoints import checkpoint_names, read_checkpoint
from audit.models import AuditEvent
from audit.services import audit_record
from orders.models import Order, OrderEvent, Trade
from retention.errors import ArchiveExists, MonthInvalid, MonthNotClosed
from retention.months import Month
from retention.records import records
from retention.services.archive import archive_month
from retention.services.verify import verify_archive
from retention.storage import archive_storage
from tests.retention.book import Book

pytestmark = pytest.mark.django_db


def _month_with_rows() -> tuple[Month, list[Book]]:
    """This month (archived as if it had ended): two organisations' orders, events, trades and audit events."""
    now = timezone.now()
    acme, globex = Book("acme"), Book("globex")
    for book in (acme, globex):
        for _ in range(3):
            book.order(now, fills=2)
    audit_record(actor=None, action="order.placed", payload={"qty": 1})
    audit_record(actor="system:rms", action="rms.rejected", payload={"rule": "qty"})
    return Month.containing(now), [acme, globex]


def _read(name: str) -> list[dict]:
    with archive_storage().open(name, "rb") as handle:
        return [json.loads(line) for line in gzip.decompress(handle.read()).splitlines()]


def _round_trip():
    month, (acme, _) = _month_with_rows()
    summary = archive_month(month=month, now=month.end)
    org = f"org-{acme.org.pk}"
    assert summary.files[f"{org}/orders.jsonl.gz"]["rows"] == 3
    assert summary.files[f"{org}/trades.jsonl.gz"]["rows"] == 6
    assert summary.files["audit_events.jsonl.gz"]["rows"] == 2
    assert _read(f"{month}/{org}/trades.jsonl.gz") == list(records(Trade.objects.filter(account=acme.account)))
    assert _read(f"{month}/{org}/order_events.jsonl.gz") == list(
        records(OrderEvent.objects.filter(order__account=acme.account))
    )
    check = verify_archive(month)
    assert check.ok, check.problems
    assert (
        check.rows
        == summary.rows
        == 2 * (3 + 3 + 6)
        + 2
        + sum(entry["rows"] for name, entry in summary.files.items() if name.endswith("references.jsonl.gz"))
    )
    return month, summary


def test_a_closed_month_archives_and_verifies_on_the_filesystem():
    _round_trip()


def test_a_closed_month_archives_and_verifies_on_s3(s3_archives):
    month, summary = _round_trip()
    keys = {item["Key"] for item in s3_archives.client("s3").list_objects_v2(Bucket="terminal-archives")["Contents"]}
    assert f"archives/{month}/manifest.json" in keys
    assert {f"archives/{month}/{name}" for name in summary.files} <= keys


def test_signed_checkpoints_go_to_the_archives_bucket_and_read_back_verified(s3_archives, settings):
    """With the archives on S3, the audit checkpoints are written to the same bucket (under their own
    prefix, never overwritten) and read back with their signature checked."""
    archives = settings.STORAGES["archives"]
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_checkpoints": {**archives, "OPTIONS": {**archives["OPTIONS"], "location": "audit-checkpoints"}},
    }
    month, _ = _month_with_rows()
    call_command("audit_checkpoint", stdout=io.StringIO())
    archive_month(month=month, now=month.end)
    assert verify_archive(month).ok
    (name,) = checkpoint_names()
    keys = {item["Key"] for item in s3_archives.client("s3").list_objects_v2(Bucket="terminal-archives")["Contents"]}
    assert f"audit-checkpoints/{name}" in keys and f"archives/{month}/manifest.json" in keys
    heads = {}
    for event in AuditEvent.objects.order_by("chain", "seq"):
        heads[event.chain] = (event.seq, event.hash)
    assert read_checkpoint(name).heads == heads and heads


def test_the_command_archives_and_verifies(capsys):
    month, _ = _month_with_rows()
    with pytest.raises(CommandError, match="month_not_closed"):
        call_command("archive_month", str(month))
    archive_month(month=month, now=month.end)
    call_command("archive_verify", str(month), "--no-progress")
    assert f"archive {month} verified" in capsys.readouterr().out


def test_an_archive_is_never_overwritten(s3_archives):
    month, _ = _month_with_rows()
    archive_month(month=month, now=month.end)
    before = archive_storage().open(f"{month}/manifest.json", "rb").read()
    Book("initech").order(timezone.now())
    with pytest.raises(ArchiveExists):
        archive_month(month=month, now=month.end)
    assert archive_storage().open(f"{month}/manifest.json", "rb").read() == before
    assert verify_archive(month).ok


def test_a_partly_written_archive_is_refused_and_left_alone():
    month, (acme, _) = _month_with_rows()
    storage = archive_storage()
    name = f"{month}/org-{acme.org.pk}/orders.jsonl.gz"
    from django.core.files.base import ContentFile

    storage.save(name, ContentFile(b"left by a crashed run"))
    with pytest.raises(ArchiveExists) as caught:
        archive_month(month=month, now=month.end)
    assert caught.value.extra["file"] == name
    assert storage.open(name, "rb").read() == b"left by a crashed run"
    assert not storage.exists(f"{month}/manifest.json")


def test_a_month_that_has_not_ended_is_refused():
    month, _ = _month_with_rows()
    with pytest.raises(MonthNotClosed):
        archive_month(month=month)


def test_an_empty_closed_month_archives_as_an_empty_manifest():
    summary = archive_month(month=Month(2019, 2))
    assert summary.files == {} and verify_archive(Month(2019, 2)).ok


@given(st.text(max_size=12))
def test_any_text_is_a_month_or_a_clear_refusal(text):
    try:
        month = Month.parse(text)
    except MonthInvalid as exc:
        assert exc.code == "month_invalid" and "YYYY-MM" in exc.message
    else:
        assert str(month) == text


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-1", "1999-12", "2026-01\x00", "\uff12\uff10\uff12\uff16-01", "", "2026-01-01"]
)
def test_a_bad_month_is_one_error_line(text):
    with pytest.raises(CommandError, match="month_invalid"):
        call_command("archive_month", text)
    assert not Order.objects.exists()

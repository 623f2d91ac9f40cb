"""archive_verify names the bad file of a corrupted, truncated or replaced archive, or a manifest that
does not match, with one error line each and a non-zero exit; and re-links the audit events."""

from __future__ import annotations

import gzip
import json

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.services import audit_record
from retention import manifest
from retention.errors import ArchiveMissing
from retention.months import Month
from retention.services.archive import archive_month
from retention.services.verify import verify_archive
from retention.storage import archive_storage
from tests.retention.book import Book

pytestmark = pytest.mark.django_db


@pytest.fixture
def archived():
    now = timezone.now()
    book = Book()
    for _ in range(4):
        book.order(now, fills=3)
    for n in range(5):
        audit_record(actor=None, action="order.placed", payload={"n": n})
    month = Month.containing(now)
    archive_month(month=month, now=month.end)
    return month, f"{month}/org-{book.org.pk}/trades.jsonl.gz"


def _fail_lines(month, capsys) -> list[str]:
    with pytest.raises(CommandError, match="failed verification"):
        call_command("archive_verify", str(month), "--no-progress")
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("FAIL")]


def _replace(name: str, data: bytes) -> None:
    storage = archive_storage()
    with open(storage.path(name), "wb") as handle:  # the tampering an attacker with the files could do
        handle.write(data)


def _stored(name: str) -> bytes:
    with archive_storage().open(name, "rb") as handle:
        return handle.read()


def test_a_corrupted_file_fails_and_is_named(archived, capsys):
    month, name = archived
    data = bytearray(_stored(name))
    data[len(data) // 2] ^= 0xFF
    _replace(name, bytes(data))
    lines = _fail_lines(month, capsys)
    assert lines == [f"FAIL {name}: " + lines[0].split(": ", 1)[1]]
    assert "corrupted" in lines[0]


def test_a_truncated_file_fails_and_is_named(archived, capsys):
    month, name = archived
    _replace(name, _stored(name)[:-20])
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {name}: truncated")


def test_a_missing_file_fails_and_is_named(archived, capsys):
    month, name = archived
    archive_storage().delete(name)
    (line,) = _fail_lines(month, capsys)
    assert line == f"FAIL {name}: missing from the archive"


def test_a_manifest_that_was_edited_fails_its_signature(archived, capsys):
    month, name = archived
    document = json.loads(_stored(f"{month}/manifest.json"))
    document["files"][name.split("/", 1)[1]]["rows"] += 1
    _replace(f"{month}/manifest.json", json.dumps(document).encode())
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {month}/manifest.json: the signature does not match")


def test_a_file_replaced_with_its_manifest_re_signed_fails_the_gzip_or_row_check(archived, capsys):
    # Someone holding the signing key re-signs a manifest for a file of other rows: the rows still count.
    month, name = archived
    forged = gzip.compress(b'{"id": 1}\n' + b"not json\n", mtime=0)
    _replace(name, forged)
    document = json.loads(_stored(f"{month}/manifest.json"))
    document.pop("signature"), document.pop("key_id")
    import hashlib

    document["files"][name.split("/", 1)[1]].update(bytes=len(forged), sha256=hashlib.sha256(forged).hexdigest())
    _replace(f"{month}/manifest.json", manifest.sign(document))
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {name}: line 2 is not JSON")


def test_an_altered_audit_event_fails_its_keyed_hash_even_with_a_re_signed_manifest(archived, capsys):
    month, _ = archived
    audit_name = f"{month}/audit_events.jsonl.gz"
    rows = [json.loads(line) for line in gzip.decompress(_stored(audit_name)).splitlines()]
    rows[2]["payload"] = '{"n":99}'
    data = gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows), mtime=0)
    _replace(audit_name, data)
    document = json.loads(_stored(f"{month}/manifest.json"))
    document.pop("signature"), document.pop("key_id")
    import hashlib

    document["files"]["audit_events.jsonl.gz"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _replace(f"{month}/manifest.json", manifest.sign(document))
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {audit_name}: chain ")
    assert "keyed hash does not match" in line


def test_a_month_without_an_archive_is_one_error_line():
    with pytest.raises(CommandError, match="archive_missing"):
        call_command("archive_verify", "2019-01", "--no-progress")
    with pytest.raises(ArchiveMissing):
        verify_archive(Month(2019, 1))


def test_a_corrupted_file_on_s3_fails_and_is_named(s3_archives, capsys):
    now = timezone.now()
    book = Book()
    book.order(now, fills=2)
    month = Month.containing(now)
    archive_month(month=month, now=month.end)
    assert verify_archive(month).ok
    name = f"{month}/org-{book.org.pk}/orders.jsonl.gz"
    s3 = s3_archives.client("s3")
    key = f"archives/{name}"
    body = s3.get_object(Bucket="terminal-archives", Key=key)["Body"].read()
    s3.put_object(Bucket="terminal-archives", Key=key, Body=body[: len(body) // 2])  # truncated behind our back
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {name}: truncated")


def test_a_manifest_of_garbage_is_named(archived, capsys):
    month, _ = archived
    _replace(f"{month}/manifest.json", b"\x00\xff not json")
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {month}/manifest.json: not a readable manifest")


def test_a_stray_file_saved_under_the_month_does_not_disturb_verification(archived):
    month, _ = archived
    archive_storage().save(f"{month}/notes.txt", ContentFile(b"operator notes"))
    assert verify_archive(month).ok


def test_a_chain_head_that_no_longer_matches_the_audit_trail_fails_and_names_the_manifest(archived, capsys):
    """The manifest records each audit chain's head when the archive was written; a database whose
    chain was re-written since (its event at that sequence hashes differently) fails verification."""
    month, _ = archived
    assert verify_archive(month).ok
    document = json.loads(_stored(f"{month}/manifest.json"))
    document.pop("signature"), document.pop("key_id")
    chain, head = next(iter(document["heads"].items()))
    head["hash"] = "0" * len(head["hash"])  # the head as a re-written chain would show it
    _replace(f"{month}/manifest.json", manifest.sign(document))
    (line,) = _fail_lines(month, capsys)
    assert line.startswith(f"FAIL {month}/manifest.json: the chain {chain} head at archive time")
    assert "(the chain was re-written)" in line

"""A million trades: the CSV export streams them in flat memory, and the same range exported by a
Celery worker on the reports queue completes with progress. PostgreSQL (the rows are made there by
one INSERT ... SELECT) and Redis (the worker's broker); slow."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import storages
from django.db import connection

from audit.models import AuditEvent
from compliance.models import ExportJob
from config.celery import app as celery_app
from tests.compliance.exporting import EXPORT, buy

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(2400)]
ROWS = 1_000_000
DAY = "2026-01-05"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def _preamble(first_chunk: bytes) -> tuple[list[bytes], bytes]:
    """The statement's comment lines at the start of an export's first chunk, and the rest of it (the
    header row on)."""
    preamble, rest = [], first_chunk
    while rest.startswith(b"#"):
        line, _, rest = rest.partition(b"\r\n")
        preamble.append(line)
    assert rest.startswith(b"executed_at_ist,"), rest[:80]
    return preamble, rest


def _insert_trades(world) -> None:
    """ROWS fills of one order on DAY, 20 ms apart from 09:15 IST, inserted by the database itself."""
    trade = buy(world)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_trade (account_id, order_id, instrument_id, product, side, quantity, price,
                                      exchange, broker_trade_id, executed_at)
            SELECT %s, %s, %s, %s, %s, 1 + i %% 9, 1000.05 + (i %% 100) * 0.05, %s, 'M' || i,
                   TIMESTAMPTZ '2026-01-05 09:15:00+05:30' + i * INTERVAL '20 milliseconds'
            FROM generate_series(1, %s) AS i
            """,
            [trade.account_id, trade.order_id, trade.instrument_id, trade.product, trade.side, trade.exchange, ROWS],
        )
        cursor.execute("ANALYZE orders_trade")


@pytest.mark.django_db(transaction=True)
def test_a_million_row_csv_streams_in_flat_memory_and_a_worker_exports_the_same_range_with_progress(
    world, signed_in, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "compliance_exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "exports")},
        },
    }
    _insert_trades(world)
    client = signed_in(world.owner)

    # 1. Streamed while the request waits (the inline limit raised above a million).
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 2 * ROWS
    started = time.monotonic()
    response = client.get(EXPORT, {"from": DAY, "to": DAY})
    assert response.status_code == 200 and response.streaming
    digest, data_digest, lines, rss, preamble = hashlib.sha256(), hashlib.sha256(), 0, {}, None
    for chunk in response.streaming_content:
        digest.update(chunk)
        if preamble is None:
            preamble, data = _preamble(chunk)
            lines -= len(preamble)
        else:
            data = chunk
        data_digest.update(data)
        lines += chunk.count(b"\n")
        if lines >= 100_000 and "warm" not in rss:
            rss["warm"] = _rss_mb()
        rss["peak"] = max(rss.get("peak", 0.0), _rss_mb())
    streamed_seconds = time.monotonic() - started
    assert lines == ROWS + 1  # the header and every row, after the statement's comment lines
    assert preamble[0] == b"# Report: Trade trail" and f"# from: {DAY}".encode() in preamble
    sent = AuditEvent.objects.get(action="compliance.report_export_sent").payload_data
    assert sent["sha256"] == digest.hexdigest()
    growth = rss["peak"] - rss["warm"]
    print(f"\nstreamed {ROWS:,} rows in {streamed_seconds:.1f} s; RSS after 100k rows {rss['warm']:.0f} MB, "
          f"peak {rss['peak']:.0f} MB (growth {growth:.1f} MB)")  # fmt: skip
    assert growth < 64, rss  # a million rows held in memory would be well over a gigabyte

    # 2. The same range made by a Celery worker on the reports queue, its progress polled.
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 0
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, queues=["reports"]):
        started = time.monotonic()
        response = client.get(EXPORT, {"from": DAY, "to": DAY})
        assert response.status_code == 303
        job_id = response["Location"].rstrip("/").rsplit("/", 1)[1]
        seen, worker_rss = [], []
        while time.monotonic() - started < 1800:
            job = ExportJob.objects.get(pk=job_id)
            seen.append(job.rows_done)
            worker_rss.append(_rss_mb())
            if job.finished:
                break
            time.sleep(0.5)
    job_seconds = time.monotonic() - started
    assert job.state == "done", job.error
    assert job.rows_done == ROWS and job.rows_total == ROWS
    progress = sorted({done for done in seen if 0 < done < ROWS})
    assert len(progress) >= 5 and progress == sorted(progress), progress  # it moved, and only forward
    page = client.get(f"/orgs/acme/compliance/exports/{job_id}/").content.decode()
    assert job.sha256 in page and "Download" in page
    with storages["compliance_exports"].open(job.file_name) as stored:
        file_digest, file_data_digest = hashlib.sha256(), hashlib.sha256()
        first = stored.read(1 << 20)
        file_preamble, data = _preamble(first)
        file_digest.update(first)
        file_data_digest.update(data)
        while chunk := stored.read(1 << 20):
            file_digest.update(chunk)
            file_data_digest.update(chunk)
    assert file_digest.hexdigest() == job.sha256
    # The same rows as the stream, and the same statement but for its generation time.
    assert file_data_digest.hexdigest() == data_digest.hexdigest()
    assert file_preamble[:-1] == preamble[:-1] and file_preamble[-1].startswith(b"# Generated: ")
    print(f"worker exported {ROWS:,} rows in {job_seconds:.1f} s, {len(progress)} progress steps seen; "
          f"RSS {min(worker_rss):.0f}-{max(worker_rss):.0f} MB")  # fmt: skip
    assert max(worker_rss) - min(worker_rss) < 64

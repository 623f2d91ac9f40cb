"""``manage.py import_candles --account``: Kite's minute history in chunks of 60 days, stored, resumed
after a failure from the last stored bar, retried after a 429, refused for the paper exchange."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from brokers.services.history import history_chunks, history_import
from marketdata.models import Candle
from tests.marketdata.bars import kite_rows, session_minutes

TOKEN = 738561
PATH = f"/instruments/historical/{TOKEN}/minute"
FIRST, LAST = date(2026, 1, 1), date(2026, 3, 31)  # 90 days: two requests of at most 60


@pytest.fixture
def history(fake_kite):
    minutes = session_minutes(FIRST, LAST)
    fake_kite.history[TOKEN] = kite_rows(minutes)
    return minutes


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_candles", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_the_range_in_requests_of_at_most_sixty_days(kite_account, fake_kite, history, world):
    out, err = run(
        "--account", str(kite_account.pk), "--symbol", "NSE:RELIANCE", "--from", "2026-01-01", "--to", "2026-03-31"
    )

    asked = [r.query_dict for r in fake_kite.requests if r.path == PATH]
    assert [(q["from"], q["to"]) for q in asked] == [
        ("2026-01-01 00:00:00", "2026-03-01 23:59:59"),
        ("2026-03-02 00:00:00", "2026-03-31 23:59:59"),
    ]
    assert all(q["oi"] == "1" and q["continuous"] == "0" for q in asked)
    assert Candle.objects.filter(instrument_id=world.equity.pk).count() == len(history)
    assert f"imported {len(history)} bar(s) in 2 request(s)" in out
    assert "0 of" in out and "minute(s) missing in 0 gap(s), 0 duplicate timestamp(s)" in out
    assert "2/2" in err  # the progress bar


def test_a_failed_chunk_leaves_nothing_of_itself_and_a_rerun_resumes_after_the_stored_bars(
    kite_account, fake_kite, history, world
):
    def fail_next(index: int, bars: int) -> None:
        fake_kite.fail(status=500, error_type="GeneralException", message="down", path=PATH)

    start = datetime(2025, 12, 31, 18, 30, tzinfo=UTC)
    end = datetime(2026, 3, 31, 18, 30, tzinfo=UTC)
    with pytest.raises(Exception):  # noqa: B017  (Kite's 500 after sending: BrokerUnavailable)
        history_import(account=kite_account, instrument_id=world.equity.pk, start=start, end=end, on_chunk=fail_next)
    stored = Candle.objects.filter(instrument_id=world.equity.pk)
    first_chunk = [ts for ts in history if ts < start + timedelta(days=60)]
    assert stored.count() == len(first_chunk)
    fake_kite.requests.clear()

    result = history_import(account=kite_account, instrument_id=world.equity.pk, start=start, end=end)

    assert result.resumed and result.start == first_chunk[-1]
    asked = [r.query_dict["from"] for r in fake_kite.requests if r.path == PATH]
    assert asked == ["2026-02-27 15:29:00"]  # the last stored minute, read again
    assert stored.count() == len(history)


def test_running_it_again_changes_nothing(kite_account, fake_kite, history, world):
    args = ("--account", str(kite_account.pk), "--symbol", "NSE:RELIANCE", "--from", "2026-01-01", "--to", "2026-03-31")
    run(*args)
    before = list(Candle.objects.filter(instrument_id=world.equity.pk).order_by("ts").values_list("ts", "close"))

    out, _ = run(*args)

    assert "resumed at 2026-03-31 15:29 IST" in out
    assert (
        list(Candle.objects.filter(instrument_id=world.equity.pk).order_by("ts").values_list("ts", "close")) == before
    )


def test_a_rate_limit_answer_is_retried_after_a_pause(kite_account, fake_kite, history, world):
    fake_kite.fail(status=429, error_type="NetworkException", message="Too many requests", path=PATH)
    pauses: list[float] = []

    result = history_import(
        account=kite_account,
        instrument_id=world.equity.pk,
        start=datetime(2026, 1, 5, 3, 45, tzinfo=UTC),
        end=datetime(2026, 1, 6, 3, 45, tzinfo=UTC),
        sleep=pauses.append,
    )

    assert pauses == [2.0]
    assert result.written == 375
    assert fake_kite.count("GET", PATH) == 2


def test_missing_minutes_are_reported_with_a_csv(kite_account, fake_kite, history, world, tmp_path):
    missing = {history[10], history[11], history[400]}
    fake_kite.history[TOKEN] = [
        row for ts, row in zip(history, fake_kite.history[TOKEN], strict=True) if ts not in missing
    ]
    report = tmp_path / "gaps.csv"

    out, _ = run(
        "--account",
        str(kite_account.pk),
        "--symbol",
        "NSE:RELIANCE",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
        "--report",
        str(report),
    )

    assert "3 of 750 minute(s) missing in 2 gap(s)" in out
    assert report.read_text().splitlines() == [
        "kind,start_ist,end_ist,minutes,count",
        "gap,2026-01-01 09:25,2026-01-01 09:26,2,",
        "gap,2026-01-02 09:40,2026-01-02 09:40,1,",
    ]


def test_the_paper_exchange_has_no_history(world):
    paper = world.account
    assert paper.broker == "paper"

    with pytest.raises(CommandError, match="broker_no_history"):
        run("--account", str(paper.pk), "--symbol", "NSE:RELIANCE", "--from", "2026-01-01", "--to", "2026-01-02")


def test_only_minute_bars_are_imported(kite_account):
    with pytest.raises(CommandError, match="history_range_invalid"):
        run(
            "--account",
            str(kite_account.pk),
            "--symbol",
            "NSE:RELIANCE",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            "--interval",
            "day",
        )


def test_the_chunks_cover_the_range_without_overlap():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chunks = history_chunks(start=start, end=start + timedelta(days=130), days=60)

    assert chunks == [
        (start, start + timedelta(days=60)),
        (start + timedelta(days=60), start + timedelta(days=120)),
        (start + timedelta(days=120), start + timedelta(days=130)),
    ]

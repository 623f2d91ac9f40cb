"""manage.py load_kite_instruments (a file, stdin, a URL) and the daily beat task, which downloads
the dump; their output; hostile cells in the dump, each a clear error line and never a crash."""

from __future__ import annotations

import gzip
import http.server
import io
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_end, session_start
from config.celery import app as celery_app
from kite.instruments import InstrumentImportFailed, refresh_instruments
from marketdata.models import Instrument
from tests.kite import fake_kite as fk

FIXTURE = Path(__file__).parent / "fixtures" / "instruments.csv"
TEXT = FIXTURE.read_bytes().decode()
LINES = TEXT.splitlines(keepends=True)

pytestmark = pytest.mark.django_db


def _call(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("load_kite_instruments", *args, min_rows=1, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_a_file_is_imported_with_a_summary_and_plain_progress_lines_off_a_terminal(monkeypatch):
    from kite.management.commands import load_kite_instruments

    monkeypatch.setattr(load_kite_instruments, "PLAIN_EVERY", 10)
    out, err = _call(str(FIXTURE))
    assert "skipped rows of exchanges the master does not list: BCD 2" in out
    assert "35 rows; 33 created, 0 updated, 0 rejected;" in out
    assert "Kite mapping 0 -> 33 listed" in out
    assert err.splitlines() == ["10 rows read", "20 rows read", "30 rows read"]
    assert BrokerInstrument.objects.filter(broker="kite").count() == 33


def test_a_gzipped_file_and_stdin_are_read_too(tmp_path, monkeypatch):
    path = tmp_path / "instruments.csv.gz"
    path.write_bytes(gzip.compress(TEXT.encode()))
    out, _ = _call(str(path), no_progress=True)
    assert "33 created" in out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXT.encode())))
    out, _ = _call("-", no_progress=True)
    assert "0 created, 33 updated" in out


def test_bad_rows_are_listed_by_line_and_a_refusal_says_the_master_is_unchanged(tmp_path):
    path = tmp_path / "instruments.csv"
    path.write_text(TEXT.replace("2026-12-29,1600", "2026-02-30,1600"), newline="")
    out, err = _call(str(path), no_progress=True)
    assert "line 22: expiry '2026-02-30' is not a date" in err
    assert "32 created, 0 updated, 1 rejected" in out
    path.write_text(TEXT[:-10], newline="")
    with pytest.raises(CommandError) as caught:
        _call(str(path), no_progress=True)
    assert "not imported (malformed): line 36 has 11 cells where the header has 12" in str(caught.value)
    assert "The previous master and mapping are unchanged." in str(caught.value)
    with pytest.raises(CommandError, match="no such file"):
        _call(str(tmp_path / "missing.csv"))


class _Dump(http.server.BaseHTTPRequestHandler):
    body = gzip.compress(TEXT.encode())
    seen: list[dict] = []

    def do_GET(self):
        _Dump.seen.append(dict(self.headers))
        if self.path != "/instruments":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def dump_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dump)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_command_downloads_a_url_with_kites_version_header(dump_server):
    out, _ = _call(f"{dump_server}/instruments", no_progress=True)
    assert "33 created" in out
    assert _Dump.seen[-1]["X-Kite-Version"] == "3"
    with pytest.raises(CommandError, match=r"not imported \(download\): the dump could not be fetched: HTTP Error 404"):
        _call(f"{dump_server}/nothing-here", no_progress=True)


def _failures(reason: str) -> float:
    return REGISTRY.get_sample_value("terminal_kite_instruments_import_failures_total", {"reason": reason}) or 0.0


def _master() -> list[tuple]:
    rows = BrokerInstrument.objects.filter(broker="kite").order_by("token")
    return [*rows.values_list("token", "tradingsymbol", "exchange", "instrument_id", "listed_at")]


def test_the_beat_task_downloads_through_the_kite_client_with_a_signed_in_accounts_session(
    kite_account, fake_kite, settings
):
    from kite.tasks import refresh_kite_instruments

    entry = next(e for e in celery_app.conf.beat_schedule.values() if e["task"] == refresh_kite_instruments.name)
    assert entry["schedule"].hour == {8} and entry["schedule"].minute == {15}  # IST (CELERY_TIMEZONE)
    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    settings.KITE_INSTRUMENTS_URL = "http://127.0.0.1:9/never-used"  # the task goes through the client
    fake_kite.instruments_csv = TEXT
    report = refresh_kite_instruments()
    assert report["created"] + report["updated"] == 33 and report["rejected"] == 0
    (asked,) = [r for r in fake_kite.requests if r.path.startswith("/instruments")]
    assert (asked.method, asked.path, asked.query, asked.body) == ("GET", "/instruments", [], b"")
    assert asked.headers["authorization"] == f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"
    assert asked.headers["x-kite-version"] == "3"
    assert BrokerInstrument.objects.get(broker="kite", tradingsymbol="RELIANCE", exchange="NSE").token == "100002"


@pytest.mark.parametrize("case", ["truncated", "refused", "implausible", "malformed"])
def test_a_failed_download_through_the_client_leaves_the_master_and_raises_the_alert(
    kite_account, fake_kite, settings, case
):
    from kite.tasks import refresh_kite_instruments

    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    fake_kite.instruments_csv = TEXT
    refresh_kite_instruments()
    before, instruments = _master(), Instrument.objects.count()
    reason = {"truncated": "download", "refused": "download", "implausible": "implausible", "malformed": "download"}
    counted = _failures(reason[case])
    if case == "truncated":  # the connection ends in the middle of a row
        fake_kite.fail(
            status=200, body=gzip.compress(TEXT[:-30].encode()), content_type="text/csv", path="/instruments"
        )
    elif case == "refused":
        fake_kite.fail(status=503, error_type="NetworkException", message="Gateway timed out", path="/instruments")
    elif case == "implausible":
        fake_kite.instruments_csv = "".join(LINES[:4])
    else:
        fake_kite.fail(status=200, body=b"<html>maintenance</html>", content_type="text/html", path="/instruments")
    with pytest.raises(RuntimeError, match=rf"not imported \({reason[case]}\)"):
        refresh_kite_instruments()
    assert _master() == before and Instrument.objects.count() == instruments
    assert _failures(reason[case]) == counted + 1


def test_the_feed_accounts_session_is_used_first_and_without_any_live_session_the_task_waits_for_a_sign_in(
    kite_account, fake_kite, settings, caplog
):
    from kite.tasks import refresh_kite_instruments

    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    feed = BrokerAccount.objects.create(organisation=kite_account.organisation, label="Feed", broker="kite")
    broker_credentials_set(account=feed, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    session_start(account=feed, secrets={"access_token": "feeds-token"}, expires_at=timezone.now() + timedelta(hours=1))
    settings.KITE_FEED_ACCOUNT_ID = feed.pk
    fake_kite.instruments_csv = TEXT
    assert refresh_kite_instruments()["rejected"] == 0
    assert fake_kite.last("GET", "/instruments").headers["authorization"] == f"token {fk.API_KEY}:feeds-token"
    session_end(account_id=feed.pk, reason="signed out")
    session_end(account_id=kite_account.pk, reason="signed out")
    asked, before = len(fake_kite.requests), _master()
    failures = {reason: _failures(reason) for reason in ("download", "malformed", "implausible", "error")}
    waits = REGISTRY.get_sample_value("terminal_kite_instruments_waiting_for_sign_in_total") or 0.0
    with caplog.at_level("INFO", logger="kite.tasks"):
        assert refresh_kite_instruments() == {"waiting": 1}  # the task succeeds: nothing is wrong yet
    assert len(fake_kite.requests) == asked  # nothing sent
    assert _master() == before
    assert {reason: _failures(reason) for reason in failures} == failures  # no failure counted: no alert
    assert REGISTRY.get_sample_value("terminal_kite_instruments_waiting_for_sign_in_total") == waits + 1
    (record,) = [r for r in caplog.records if "waiting for a sign-in" in r.getMessage()]
    assert record.levelname == "INFO"


# --- Hostile cells ---------------------------------------------------------------------------------

COLUMNS = LINES[0].strip().split(",")
HOSTILE = st.one_of(
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "NaN",
            "Infinity",
            "9" * 5000,
            "99999999999999999999999",
            "-1",
            "0",
            "1e-9",
            "2026-13-45",
            "2026-02-30",
            "26-12-29",
            "2026-12-29T00:00",
            "\x00",
            "NIF\x00TY",
            "",
            " ",
            "x" * 300,
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters='\r\n"'), max_size=30),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(min_value=1, max_value=len(LINES) - 1), column=st.sampled_from(COLUMNS), value=HOSTILE)
def test_a_hostile_cell_is_a_clear_error_line_or_a_sound_value_and_never_half_written(row, column, value):
    cells = LINES[row].rstrip("\r\n").split(",")  # no cell of the fixture holds a comma
    cells[COLUMNS.index(column)] = '"' + value.replace('"', '""') + '"'
    lines = [*LINES[:row], ",".join(cells) + "\r\n", *LINES[row + 1 :]]
    try:
        report = refresh_instruments(
            lambda: io.StringIO("".join(lines), newline=""), min_percent=0, min_rows=1, today=date(2026, 12, 7)
        )
    except InstrumentImportFailed as exc:
        assert exc.message  # a refusal with a reason: the transaction wrote nothing
        return
    messages = dict(report.errors)
    assert set(messages) <= {row + 1}, messages
    for message in messages.values():
        assert message and "\n" not in message and len(message) < 400
    # Nothing the database holds is broken: every instrument reads back, every token maps to one.
    for instrument in Instrument.objects.all():
        assert "\x00" not in instrument.tradingsymbol + instrument.name + instrument.exchange_token
        assert instrument.lot_size >= 1 and instrument.tick_size > 0
    assert all(token.isdigit() for token in BrokerInstrument.objects.values_list("token", flat=True))

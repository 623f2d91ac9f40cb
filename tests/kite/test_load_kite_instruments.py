"""manage.py load_kite_instruments (a file, stdin, a URL) and the daily beat task, which downloads
the dump; their output; hostile cells in the dump, each a clear error line and never a crash."""

from __future__ import annotations

import gzip
import http.server
import io
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.models import BrokerInstrument
from config.celery import app as celery_app
from kite.instruments import InstrumentImportFailed, refresh_instruments
from marketdata.models import Instrument

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


def test_the_beat_task_downloads_the_gzipped_dump_before_the_open(dump_server, settings):
    from kite.tasks import refresh_kite_instruments

    entry = next(e for e in celery_app.conf.beat_schedule.values() if e["task"] == refresh_kite_instruments.name)
    assert entry["schedule"].hour == {8} and entry["schedule"].minute == {15}  # IST (CELERY_TIMEZONE)
    settings.KITE_INSTRUMENTS_URL = f"{dump_server}/instruments"
    settings.KITE_INSTRUMENTS_MIN_ROWS = 1
    assert refresh_kite_instruments() == {"created": 33, "updated": 0, "rejected": 0}
    assert _Dump.seen[-1]["X-Kite-Version"] == "3"
    out, _ = _call(f"{dump_server}/instruments", no_progress=True)
    assert "0 created, 33 updated" in out
    settings.KITE_INSTRUMENTS_URL = f"{dump_server}/nothing-here"
    with pytest.raises(RuntimeError, match=r"not imported \(download\): the dump could not be fetched: HTTP Error 404"):
        refresh_kite_instruments()


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

"""Import 1-minute candles from a broker's historical API or from a CSV file.

    manage.py import_candles --account 7 --symbol NSE:INFY --from 2026-01-01 --to 2026-03-31
    manage.py import_candles --csv infy.csv --symbol NSE:INFY --report gaps.csv

A broker import reads ``[--from, --to]`` (IST days, both included, or ISO 8601 times with ``--to``
excluded) in chunks of the broker's limit per request and resumes from the latest stored bar when run
again (``--restart`` reads the whole range). A CSV import (columns in ``marketdata/candle_csv.py``)
checks every row first and writes nothing if one is bad, naming each bad line. Both end with a summary
of the session minutes missing in the range and the timestamps given twice; ``--report FILE`` writes
them as CSV. The command lives in ``brokers`` because a broker import needs the adapter registry;
the CSV import only calls ``marketdata``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from brokers.models import BrokerAccount
from brokers.services.history import STORED_INTERVAL, history_import
from core.errors import ApplicationError
from marketdata.candle_csv import BadHeader
from marketdata.gaps import GapReport
from marketdata.hours import IST
from marketdata.selectors import candle_gaps, instrument_resolve
from marketdata.services import candle_import_csv


def _moment(value: str, *, end: bool) -> datetime:
    """An IST day (``--to`` includes it: its end is the next midnight) or an ISO 8601 time (IST if
    it names no zone)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=IST)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a day (YYYY-MM-DD) or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=IST)


class Command(BaseCommand):
    help = "Import 1-minute candles from a broker's history (--account) or a CSV file (--csv), then report gaps."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--account", type=int, help="the broker account whose history to read")
        source.add_argument("--csv", type=Path, help="a CSV file: timestamp,open,high,low,close,volume[,oi]")
        parser.add_argument("--symbol", required=True, help="the instrument, EXCHANGE:TRADINGSYMBOL")
        parser.add_argument("--from", dest="start", help="first IST day (or ISO time); broker imports")
        parser.add_argument("--to", dest="end", help="last IST day (or ISO time, excluded); broker imports")
        parser.add_argument("--interval", default=STORED_INTERVAL, help="only 'minute' is stored")
        parser.add_argument("--restart", action="store_true", help="read the whole range, not from the last bar")
        parser.add_argument("--report", type=Path, help="write the missing minutes and duplicates to this CSV")

    def handle(self, *args, account, csv, symbol, start, end, interval, restart, report, **options):
        resolved, _ = instrument_resolve([symbol])
        if symbol not in resolved:
            raise CommandError(f"{symbol!r} is not an active instrument (EXCHANGE:TRADINGSYMBOL)")
        instrument_id = resolved[symbol]
        if csv is not None:
            gaps = self._csv(csv, instrument_id)
        else:
            gaps = self._broker(account, instrument_id, start, end, interval, restart)
        self.stdout.write(f"gaps: {gaps.summary()}")
        if report is not None:
            with report.open("w", newline="", encoding="utf-8") as out:
                gaps.write_csv(out)
            self.stdout.write(f"report written to {report}")

    def _broker(self, account_id, instrument_id, start, end, interval, restart) -> GapReport:
        if not start or not end:
            raise CommandError("a broker import needs --from and --to")
        low, high = _moment(start, end=False), _moment(end, end=True)
        account = BrokerAccount.objects.filter(pk=account_id).first()
        if account is None:
            raise CommandError(f"there is no broker account {account_id}")
        bar = tqdm(unit="chunk", file=self.stderr, desc="importing")
        try:
            result = history_import(
                account=account,
                instrument_id=instrument_id,
                start=low,
                end=high,
                interval=interval,
                resume=not restart,
                on_start=lambda chunks: bar.reset(total=chunks),
                on_chunk=lambda index, bars: (bar.update(1), bar.set_postfix(bars=bars)),
            )
        except ApplicationError as exc:
            raise CommandError(
                f"{exc.code}: {exc.message} (the chunks before it are stored; run again to resume)"
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        resumed = f", resumed at {result.start.astimezone(IST):%Y-%m-%d %H:%M} IST" if result.resumed else ""
        self.stdout.write(f"imported {result.written} bar(s) in {result.chunks} request(s){resumed}")
        last_day = (high - timedelta(minutes=1)).astimezone(IST).date()
        return candle_gaps(
            instrument_id=instrument_id,
            first=low.astimezone(IST).date(),
            last=last_day,
            duplicates=result.duplicates,
        )

    def _csv(self, path: Path, instrument_id: int) -> GapReport:
        try:
            with path.open(encoding="utf-8", newline="") as counted:
                rows = max(sum(1 for _ in counted) - 1, 0)
            with (
                path.open(encoding="utf-8", newline="") as lines,
                tqdm(total=rows, unit="row", file=self.stderr, desc="reading") as bar,
            ):
                result = candle_import_csv(lines=lines, instrument_id=instrument_id, on_row=lambda: bar.update(1))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text (byte {exc.start})") from None
        except BadHeader as exc:
            raise CommandError(f"{path}: {exc}") from None
        if result.errors:
            for line, message in result.errors:
                self.stderr.write(f"{path}: line {line}: {message}")
            raise CommandError(f"{len(result.errors)} bad row(s) in {path}: nothing was written")
        if result.first is None or result.last is None:
            raise CommandError(f"{path} has no rows: nothing was written")
        self.stdout.write(f"imported {result.written} bar(s) from {path}")
        return candle_gaps(
            instrument_id=instrument_id,
            first=result.first.astimezone(IST).date(),
            last=result.last.astimezone(IST).date(),
            duplicates=result.duplicates,
        )

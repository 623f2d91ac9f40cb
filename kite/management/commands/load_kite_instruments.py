"""Import Kite Connect's instruments dump into the symbol master and the Kite mapping, whole or not at all."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kite.instruments import InstrumentImportFailed, refresh_instruments, text_stream, url_source

MAX_REPORTED = 50
PLAIN_EVERY = 20_000  # rows between progress lines when stderr is not a terminal


class Command(BaseCommand):
    help = (
        "Import Kite's instruments dump from SOURCE: a file (.gz accepted), an http(s) URL, or - for stdin "
        "(default: KITE_INSTRUMENTS_URL). One transaction: a file cut short, missing a column or implausibly "
        "small leaves the previous master and mapping untouched."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", help="file path, http(s) URL or - (stdin)")
        parser.add_argument(
            "--min-percent",
            type=int,
            default=None,
            help="refuse a dump loading fewer instruments than this %% of the current mapping "
            "(default KITE_INSTRUMENTS_MIN_PERCENT)",
        )
        parser.add_argument(
            "--min-rows", type=int, default=None, help="refuse a dump loading fewer (default KITE_INSTRUMENTS_MIN_ROWS)"
        )
        parser.add_argument("--no-progress", action="store_true", help="neither a progress bar nor progress lines")

    def handle(self, *args, source: str | None, min_percent: int | None, min_rows: int | None, no_progress: bool, **o):
        source = source or settings.KITE_INSTRUMENTS_URL
        if source == "-":
            fetch = lambda: text_stream(sys.stdin.buffer)  # noqa: E731
        elif source.startswith(("https://", "http://")):
            fetch = url_source(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise CommandError(f"{source}: no such file")
            fetch = lambda: text_stream(path.open("rb"))  # noqa: E731
        progress, close = self._progress(no_progress)
        try:
            report = refresh_instruments(
                fetch,
                min_percent=settings.KITE_INSTRUMENTS_MIN_PERCENT if min_percent is None else min_percent,
                min_rows=settings.KITE_INSTRUMENTS_MIN_ROWS if min_rows is None else min_rows,
                on_row=progress,
            )
        except InstrumentImportFailed as exc:
            raise CommandError(
                f"{source}: not imported ({exc.reason}): {exc.message}. The previous master and mapping are unchanged."
            ) from None
        finally:
            close()
        for line, message in report.errors[:MAX_REPORTED]:
            self.stderr.write(f"line {line}: {message}")
        if len(report.errors) > MAX_REPORTED:
            self.stderr.write(f"... and {len(report.errors) - MAX_REPORTED} more bad rows")
        if report.skipped:
            listed = ", ".join(f"{exchange} {count:,}" for exchange, count in sorted(report.skipped.items()))
            self.stdout.write(f"skipped rows of exchanges the master does not list: {listed}")
        self.stdout.write(
            f"{source}: {report.rows:,} rows; {report.created:,} created, {report.updated:,} updated, "
            f"{len(report.errors):,} rejected; {report.retired:,} no longer listed and {report.expired:,} expired "
            f"marked inactive; Kite mapping {report.previous:,} -> {report.mapped:,} listed"
        )

    def _progress(self, disabled: bool):
        """A tqdm bar on a terminal; otherwise a plain line every PLAIN_EVERY rows."""
        out = self.stderr._out
        if disabled:
            return None, lambda: None
        if getattr(out, "isatty", lambda: False)():
            bar = tqdm(desc="kite instruments", unit=" rows", file=out)
            return bar.update, bar.close
        count = [0]

        def tick() -> None:
            count[0] += 1
            if count[0] % PLAIN_EVERY == 0:
                self.stderr.write(f"{count[0]:,} rows read")

        return tick, lambda: None

"""Load a symbol master: the project's CSV or a broker's instrument dump, or the built-in sample."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from marketdata.errors import InvalidInstrumentRow
from marketdata.importers import FORMATS, read_rows
from marketdata.sample_master import AS_OF, sample_rows
from marketdata.services import instrument_upsert_many

MAX_REPORTED = 50


class Command(BaseCommand):
    help = (
        "Insert or update instruments from FILE (csv, kite, angel or upstox layout; .gz accepted), or the "
        "sample master with --sample. Idempotent; bad rows are reported by line and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", type=Path)
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--sample", action="store_true", help="load the built-in sample master for today")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: Path | None, format: str, sample: bool, no_progress: bool, **options):
        if sample == (file is not None):
            raise CommandError("give either FILE or --sample")
        if sample:
            rows = list(enumerate(sample_rows(date.today()), start=1))
            source = f"sample master (reference data as of {AS_OF:%d %b %Y})"
        else:
            if not file.is_file():
                raise CommandError(f"{file}: no such file")
            rows = read_rows(file, format)
            source = f"{file} ({format})"
        bar = tqdm(desc="instruments", unit=" rows", disable=no_progress, file=self.stderr._out)
        try:
            report = instrument_upsert_many(rows=rows, on_row=bar.update)
        except InvalidInstrumentRow as exc:
            raise CommandError(f"{source}: {exc.message}") from None
        except OSError as exc:
            raise CommandError(f"{source}: {exc}") from None
        finally:
            bar.close()
        for line, message in report.errors[:MAX_REPORTED]:
            self.stderr.write(f"line {line}: {message}")
        if len(report.errors) > MAX_REPORTED:
            self.stderr.write(f"... and {len(report.errors) - MAX_REPORTED} more bad rows")
        self.stdout.write(
            f"{source}: {report.created} created, {report.updated} updated, {len(report.errors)} rejected"
        )

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from retention.errors import RetentionError
from retention.months import Month
from retention.services.verify import load_manifest, verify_archive


class Command(BaseCommand):
    help = (
        "Verify a month's archive: the manifest's signature, each file's size, SHA-256 and rows, and the audit "
        "events re-linked and compared with the audit chain's heads. Exits 1 naming each bad file."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("month", help="the month, YYYY-MM")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, month: str, **options) -> None:
        try:
            parsed = Month.parse(month)
            try:
                total = len(load_manifest(parsed)["files"])
            except RetentionError as exc:
                if exc.code == "archive_missing":
                    raise
                total = 0
            with tqdm(total=total, unit="file", desc="archive_verify", disable=options["no_progress"] or None) as bar:
                check = verify_archive(parsed, progress=bar.update)
        except RetentionError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        for problem in check.problems:
            self.stderr.write(f"FAIL {problem}")
        if not check.ok:
            raise CommandError(f"archive {parsed} failed verification: {len(check.problems)} bad file(s)")
        self.stdout.write(f"archive {parsed} verified: {check.files} files, {check.rows} rows")

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from retention.errors import RetentionError
from retention.months import Month
from retention.services.restore import restore_month


class Command(BaseCommand):
    help = (
        "Restore a month from its archive into a scratch database (a DATABASES alias; `scratch` is "
        "SCRATCH_DATABASE_URL, SQLite under var/ by default), after verifying the archive. Migrate the scratch "
        "database first: manage.py migrate --database scratch."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("month", help="the month, YYYY-MM")
        parser.add_argument("--database", default="scratch", help="the DATABASES alias to restore into")

    def handle(self, *args, month: str, database: str, **options) -> None:
        try:
            summary = restore_month(month=Month.parse(month), using=database)
        except RetentionError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        for table, rows in sorted(summary.rows.items()):
            self.stdout.write(f"{table}: {rows} rows")
        self.stdout.write(
            f"restored {summary.month} into {database!r}: {sum(summary.rows.values())} rows, "
            f"{summary.references} referenced rows it lacked"
        )

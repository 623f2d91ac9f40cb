from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from retention.errors import RetentionError
from retention.months import Month
from retention.services.archive import archive_month


class Command(BaseCommand):
    help = (
        "Archive a closed month (YYYY-MM, IST) to the archives' storage: its orders, order events, trades and "
        "audit events as gzip JSON Lines per organisation, with a signed manifest. Written once: a month "
        "already archived is refused."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("month", help="the month, YYYY-MM")

    def handle(self, *args, month: str, **options) -> None:
        try:
            summary = archive_month(month=Month.parse(month))
        except RetentionError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            f"archived {summary.month}: {len(summary.files)} files, {summary.rows} rows; {summary.manifest}"
        )

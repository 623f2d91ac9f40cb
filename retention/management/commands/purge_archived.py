from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from retention.errors import RetentionError
from retention.months import Month
from retention.services.purge import purge_through


class Command(BaseCommand):
    help = (
        "Delete the orders, order events and trades of archived months up to a month (YYYY-MM) that has left the "
        "retention window. Refuses a month inside the window, or with rows but no verified archive; skips "
        "organisations under legal hold. The audit trail is never purged."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--through", required=True, help="the last month to purge, YYYY-MM")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")

    def handle(self, *args, through: str, dry_run: bool, **options) -> None:
        try:
            summary = purge_through(through=Month.parse(through), dry_run=dry_run)
        except RetentionError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        verb = "would delete" if dry_run else "deleted"
        for table, rows in sorted(summary.deleted.items()):
            self.stdout.write(f"{table}: {verb} {rows} rows")
        if summary.held:
            self.stdout.write(f"skipped {len(summary.held)} organisation(s) under legal hold")
        if summary.orders_waiting:
            self.stdout.write(f"kept {summary.orders_waiting} order(s) whose later events or trades are not purged yet")
        months = ", ".join(str(month) for month in summary.months) or "none"
        self.stdout.write(f"purged months: {months}")

"""Load a broker family's symbol master into the broker mapping.

    manage.py load_broker_master --broker shoonya [--min-rows 1000] [--min-percent 50]

Downloads the broker's master through its family (``master_rows``), maps our instruments to the
broker's tokens by exchange and exchange token, and replaces the family's mapping in one transaction
(``brokers.families.master``). A failed download, or a file too short or too different from today's
mapping, changes nothing and exits with an error line. The load is audited.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_record
from brokers.adapters import registry
from brokers.adapters.base import BrokerError
from brokers.families.master import MasterImportRefused, master_import
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Load a broker family's symbol master into the broker mapping."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--broker", required=True, help="The registry's broker code, e.g. shoonya.")
        parser.add_argument("--min-rows", type=int, default=1000, help="Refuse a file with fewer readable rows.")
        parser.add_argument(
            "--min-percent", type=int, default=50, help="Refuse a file mapping under this share of today's mapping."
        )

    def handle(self, *args, broker: str, min_rows: int, min_percent: int, **options) -> None:
        try:
            family = registry.family(broker)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        try:
            rows = family.master_rows(broker)
            report = master_import(family.code, rows, min_rows=min_rows, min_percent=min_percent)
        except NotImplementedError:
            raise CommandError(f"The {family.code} family has no symbol master to download.") from None
        except (MasterImportRefused, BrokerError, ApplicationError) as exc:  # e.g. no master host in the registry
            raise CommandError(exc.message) from None
        audit_record(
            actor="system:load_broker_master",
            action="broker.master_loaded",
            target=None,
            payload={
                "broker": broker,
                "family": family.code,
                "rows": report.rows,
                "mapped": report.mapped,
                "unmatched": report.unmatched,
                "errors": report.error_count,
                "retired": report.retired,
            },
        )
        self.stdout.write(
            f"{broker} ({family.code}): {report.rows} rows, {report.mapped} mapped, {report.unmatched} not in our"
            f" master, {report.duplicates} repeated, {report.error_count} unreadable, {report.retired} retired."
        )
        for line, why in report.errors[:20]:
            self.stdout.write(f"  line {line}: {why}")

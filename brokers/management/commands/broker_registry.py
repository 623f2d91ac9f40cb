"""List the broker registry (brokers/data/brokers.toml) with each broker's status, or keep the table
in docs/brokers.md current.

    manage.py broker_registry                 # a plain table
    manage.py broker_registry --status planned
    manage.py broker_registry --write-docs    # rewrite the table in docs/brokers.md
    manage.py broker_registry --check-docs    # exit 1 if docs/brokers.md's table is stale
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from brokers import catalogue

DOCS = Path(settings.BASE_DIR) / "docs" / "brokers.md"
START, END = "<!-- registry:start -->", "<!-- registry:end -->"


def markdown_table() -> str:
    counts = catalogue.status_counts()
    on_families = counts["tested"] + counts["untested"]
    brokers = sum(counts.values())
    lines = [
        f"{brokers} brokers: {counts['tested']} implemented"
        f" and tested, {counts['untested']} on an implemented family but untested ({on_families} reachable in all),"
        f" {counts['planned']} planned, {counts['no_api']} without a public trading API.",
        "",
        "| Broker | Code | API family | Sign-in | Status | Note |",
        "|---|---|---|---|---|---|",
    ]
    for entry in catalogue.entries().values():
        if entry.family == "paper":
            continue
        cells = (entry.name, f"`{entry.code}`", entry.family, entry.login or "—", entry.status_label, entry.note or "")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def docs_with_table(text: str) -> str:
    if START not in text or END not in text:
        raise CommandError(f"{DOCS} has no {START} ... {END} markers for the table")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


class Command(BaseCommand):
    help = "List the broker registry, or keep docs/brokers.md's table current."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--status", choices=sorted(catalogue.STATUSES), help="Only brokers with this status.")
        parser.add_argument("--write-docs", action="store_true", help="Rewrite the table in docs/brokers.md.")
        parser.add_argument("--check-docs", action="store_true", help="Fail if docs/brokers.md's table is stale.")

    def handle(self, *args, status=None, write_docs=False, check_docs=False, **options) -> None:
        if write_docs or check_docs:
            current = DOCS.read_text()
            wanted = docs_with_table(current)
            if check_docs:
                if wanted != current:
                    raise CommandError("docs/brokers.md's table is stale: run manage.py broker_registry --write-docs")
                self.stdout.write("docs/brokers.md's table is current.")
                return
            DOCS.write_text(wanted)
            self.stdout.write(f"Wrote the table of {len(catalogue.entries())} brokers to {DOCS}.")
            return
        for entry in catalogue.entries().values():
            if status and entry.status != status:
                continue
            self.stdout.write(f"{entry.code:<16} {entry.family:<12} {entry.status_label:<38} {entry.name}")
        counts = catalogue.status_counts()
        self.stdout.write(", ".join(f"{catalogue.STATUSES[key]}: {value}" for key, value in counts.items()))

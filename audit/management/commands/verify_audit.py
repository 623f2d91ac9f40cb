from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.errors import CheckpointError
from audit.verification import VerificationResult, expected_total, verify_trail


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chains and check them against the signed checkpoints. Exits 0 with the number "
        "of events verified, or 1 naming the first broken sequence of each broken chain and why (hash mismatch, "
        "gap, reordering, tail or chain missing), and any bad, missing or stale checkpoint."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=int, metavar="SEQ", help="first sequence to verify in each chain")
        parser.add_argument("--until", type=int, metavar="SEQ", help="last sequence to verify in each chain")
        parser.add_argument(
            "--no-checkpoints",
            action="store_true",
            help="recompute the chains only: without the checkpoints a dropped tail, a dropped chain or an "
            "event from before keyed links cannot be checked (the run says so)",
        )
        parser.add_argument("--checkpoints", action="store_true", help="the default; accepted for older scripts")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, since: int | None, until: int | None, no_checkpoints: bool, **options) -> None:
        if no_checkpoints and options["checkpoints"]:
            raise CommandError("--checkpoints and --no-checkpoints contradict each other")
        for name, value in (("--since", since), ("--until", until)):
            if value is not None and value < 1:
                raise CommandError(f"{name} must be a sequence number of at least 1")
        if since is not None and until is not None and since > until:
            raise CommandError("--since must not be greater than --until")

        total = expected_total(since=since, until=until)
        with tqdm(
            total=total, unit="ev", unit_scale=True, desc="verify_audit", disable=options["no_progress"] or None
        ) as bar:
            try:
                result = verify_trail(since=since, until=until, use_checkpoints=not no_checkpoints, progress=bar.update)
            except CheckpointError as exc:
                raise CommandError(exc.message) from exc
        self._report(result, checked=not no_checkpoints)

    def _report(self, result: VerificationResult, *, checked: bool) -> None:
        for message in result.problems:
            self.stderr.write(f"FAIL {message}")
        for problem in result.breaks:
            self.stderr.write(f"FAIL {problem}")
        if not result.ok:
            raise CommandError(
                f"audit trail verification failed: {len(result.breaks)} broken chain(s), "
                f"{len(result.problems)} checkpoint problem(s); {result.verified} events verified before the breaks"
            )
        if not checked:
            self.stderr.write("WARNING checkpoints skipped (--no-checkpoints): a dropped tail or chain goes unseen")
        if result.verified == 0:
            self.stdout.write("OK: the audit trail is empty; nothing to verify.")
            return
        chains = len(result.heads)
        suffix = f"; {result.checkpoints} signed checkpoint(s) match" if checked else ""
        self.stdout.write(f"OK: {result.verified} events verified in {chains} chain(s){suffix}.")

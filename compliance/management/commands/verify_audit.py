from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from compliance.checkpoints import checkpoint_names, read_checkpoint, trusted_keys
from compliance.errors import CheckpointError
from compliance.verification import ChainBreak, VerificationResult, expected_total, verify_chains


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chains. Exits 0 with the number of events verified, or 1 naming the first "
        "broken sequence of each broken chain and why (hash mismatch, gap, reordering, tail missing)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=int, metavar="SEQ", help="first sequence to verify in each chain")
        parser.add_argument("--until", type=int, metavar="SEQ", help="last sequence to verify in each chain")
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="also check every signed checkpoint and that the chains still contain the heads they recorded",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, since: int | None, until: int | None, checkpoints: bool, **options) -> None:
        for name, value in (("--since", since), ("--until", until)):
            if value is not None and value < 1:
                raise CommandError(f"{name} must be a sequence number of at least 1")
        if since is not None and until is not None and since > until:
            raise CommandError("--since must not be greater than --until")

        loaded, bad = [], []
        if checkpoints:
            keys = trusted_keys()
            for name in checkpoint_names():
                try:
                    loaded.append(read_checkpoint(name, keys))
                except CheckpointError as exc:
                    bad.append(exc.message)

        total = expected_total(since=since, until=until)
        with tqdm(
            total=total, unit="ev", unit_scale=True, desc="verify_audit", disable=options["no_progress"] or None
        ) as bar:
            result = verify_chains(since=since, until=until, checkpoints=loaded, progress=bar.update)
        self._report(result, bad, checkpoints)

    def _report(self, result: VerificationResult, bad_checkpoints: list[str], checked: bool) -> None:
        for message in bad_checkpoints:
            self.stderr.write(f"FAIL {message}")
        for problem in result.breaks:
            self.stderr.write(f"FAIL {_describe(problem)}")
        if result.breaks or bad_checkpoints:
            raise CommandError(
                f"audit trail verification failed: {len(result.breaks)} broken chain(s), "
                f"{len(bad_checkpoints)} bad checkpoint(s); {result.verified} events verified before the breaks"
            )
        if result.verified == 0:
            self.stdout.write("OK: the audit trail is empty; nothing to verify.")
            return
        chains = len(result.heads)
        suffix = f"; {result.checkpoints} signed checkpoint(s) match" if checked else ""
        self.stdout.write(f"OK: {result.verified} events verified in {chains} chain(s){suffix}.")


def _describe(problem: ChainBreak) -> str:
    return str(problem)

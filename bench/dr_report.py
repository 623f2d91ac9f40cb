"""Print the numbers of the last disaster-recovery drills against the targets.

    python bench/dr_report.py [test-artifacts/dr/report.json]

The drills (tests/deploy/test_dr_*.py, marked slow) write the report; this prints each measured RTO
and data-loss window as a fraction of its target (RTO 15 min, RPO 5 min), so a runbook can quote it.
Exits 1 if the report is missing or a number exceeds its target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RTO_TARGET_SECONDS = 15 * 60
RPO_TARGET_SECONDS = 5 * 60
DEFAULT_REPORT = Path(__file__).resolve().parents[1] / "test-artifacts" / "dr" / "report.json"


def rows(report: dict) -> list[tuple[str, str, float, float]]:
    """Return (drill, measure, value, target) for every timed number in the report."""
    found = []
    for drill, numbers in sorted(report.items()):
        if "rto_seconds" in numbers:
            found.append((drill, "RTO s", float(numbers["rto_seconds"]), RTO_TARGET_SECONDS))
        if "lost_window_seconds" in numbers:
            found.append((drill, "RPO s", float(numbers["lost_window_seconds"]), RPO_TARGET_SECONDS))
        if "committed_but_lost" in numbers:
            found.append((drill, "lost commits", float(numbers["committed_but_lost"]), 0.0))
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_REPORT
    if not path.exists():
        print(f"no drill report at {path}: run `pytest -m slow tests/deploy -k dr` first", file=sys.stderr)
        return 1
    report = json.loads(path.read_text())
    over = False
    print(f"{'drill':32} {'measure':13} {'value':>9} {'target':>8} {'ratio':>8}")
    for drill, measure, value, target in rows(report):
        ratio = value / target if target else (0.0 if value == 0 else float("inf"))
        over |= ratio > 1
        print(f"{drill:32} {measure:13} {value:9.3f} {target:8.0f} {ratio:8.4f}")
    for drill, numbers in sorted(report.items()):
        extra = {k: v for k, v in numbers.items() if k not in {"rto_seconds", "lost_window_seconds", "measured_at"}}
        print(f"\n{drill} ({numbers.get('measured_at', '?')}): " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""bandit over the project's own code: no medium or high finding, and every ``# nosec`` names the check
it silences and says why (on its line, after " - ", or in a comment right above)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every layer of docs/architecture.md, from the ground floor up.
PACKAGES = [
    "core", "infra", "audit", "accounts", "marketdata", "brokers", "paper", "kite", "rms", "orders",
    "strategies", "compliance", "terminal", "config",
]  # fmt: skip
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)$")
REASONED = re.compile(r"^\s+B\d{3}(?:\s*,\s*B\d{3})*\s+-\s+\S")


def test_bandit_finds_nothing_of_medium_or_high_severity():
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", *PACKAGES, "-x", "*/migrations/*", "-ll", "-f", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert findings == [], "\n".join(findings)
    assert not report["errors"], report["errors"]


def test_every_nosec_names_its_check_and_says_why():
    unexplained = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines):
                match = NOSEC.search(line)
                if match is None:
                    continue
                rest = match["rest"]
                commented_above = number > 0 and lines[number - 1].strip().startswith("#")
                if not (REASONED.match(rest) or (re.match(r"^\s+B\d{3}", rest) and commented_above)):
                    unexplained.append(f"{path.relative_to(ROOT)}:{number + 1}: {line.strip()}")
    assert unexplained == [], "\n".join(unexplained)

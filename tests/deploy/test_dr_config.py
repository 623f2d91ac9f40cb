"""The DR configuration and scripts in deploy/postgres/dr/ say what the runbooks promise.

The drills (test_dr_*.py, marked slow) run these files against real servers; these fast checks
catch an edit that weakens a setting before a drill ever runs.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.dr_cluster import DR_DIR, require_commands

SCRIPTS = sorted(path for path in DR_DIR.glob("*.sh") if path.name != "common.sh")


def _settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^#\s]+)", line)
        if match:
            value = match.group(2)
            settings[match.group(1)] = value[1:-1].replace("''", "'") if value.startswith("'") else value
    return settings


def primary_setting(name: str) -> str:
    """Return one setting of deploy/postgres/dr/postgresql.primary.conf. Raises KeyError if unset."""
    return _settings(DR_DIR / "postgresql.primary.conf")[name]


def _patroni(name: str) -> dict:
    return yaml.safe_load((DR_DIR / name).read_text())


def test_the_primary_ships_wal_synchronously_to_a_quorum_and_archives_every_minute():
    conf = _settings(DR_DIR / "postgresql.primary.conf")
    assert conf["wal_level"] == "replica"
    assert conf["synchronous_commit"] in {"on", "remote_apply"}
    assert re.fullmatch(r"ANY 1 \(\w+(, \w+)+\)", conf["synchronous_standby_names"])
    assert conf["archive_mode"] == "on"
    assert "archive-wal.sh" in conf["archive_command"]
    assert int(conf["archive_timeout"]) <= 60
    assert conf["wal_log_hints"] == "on"
    assert conf["max_slot_wal_keep_size"] not in {"-1", "0"}, "a dead slot must not be allowed to fill the disk"


def test_patroni_fails_over_only_to_a_replica_with_every_committed_transaction():
    dcs = _patroni("patroni.yml")["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] == "quorum"
    assert dcs["synchronous_mode_strict"] is True
    assert dcs["maximum_lag_on_failover"] == 0
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert "data-checksums" in _patroni("patroni.yml")["bootstrap"]["initdb"]


def test_patroni_parameters_match_the_plain_postgresql_fragment():
    conf = _settings(DR_DIR / "postgresql.primary.conf")
    parameters = _patroni("patroni.yml")["bootstrap"]["dcs"]["postgresql"]["parameters"]
    for name, value in parameters.items():
        if name in conf:
            assert str(value) == conf[name], f"{name}: patroni.yml {value!r}, postgresql.primary.conf {conf[name]!r}"


def test_the_dr_region_is_a_standby_cluster_fed_by_streaming_and_the_archive():
    config = _patroni("patroni-standby-cluster.yml")
    standby = config["bootstrap"]["dcs"]["standby_cluster"]
    assert standby["host"] and standby["port"] and standby["primary_slot_name"]
    assert "restore-wal.sh" in standby["restore_command"]
    assert config["tags"]["nosync"] is True, "the remote region must never become a synchronous standby"
    dcs = config["bootstrap"]["dcs"]
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    # The validator probes this machine: listen ports must be free here, so only they are moved.
    text = text.replace("0.0.0.0:8008", f"127.0.0.1:{_free_port()}")
    text = text.replace("0.0.0.0:5432", f"127.0.0.1:{_free_port()}")
    (tmp_path / "patroni.yml").write_text(text)
    return subprocess.run(
        ["patroni", "--validate-config", str(tmp_path / "patroni.yml")], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", ["patroni.yml", "patroni-standby-cluster.yml"])
def test_patroni_validates_the_configuration(name, tmp_path):
    require_commands("patroni")
    result = _validate(tmp_path, (DR_DIR / name).read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_patroni_validation_rejects_a_broken_configuration(tmp_path):
    require_commands("patroni")
    result = _validate(tmp_path, (DR_DIR / "patroni.yml").read_text().replace("ttl: 30", "ttl: thirty"))
    assert result.returncode != 0
    assert "ttl" in result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_each_script_stops_on_the_first_error(script):
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines[:8]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_each_script_prints_its_usage_and_fails_without_arguments(script):
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "usage:" in result.stderr


def test_the_scripts_pass_shellcheck():
    require_commands("shellcheck")
    result = subprocess.run(
        ["shellcheck", "-x", "-s", "bash", *map(str, SCRIPTS)], capture_output=True, text=True, cwd=DR_DIR
    )
    assert result.returncode == 0, result.stdout


def test_the_archive_command_refuses_to_overwrite_a_different_segment(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(b"a" * 1024)
    run = ["bash", str(DR_DIR / "archive-wal.sh"), str(segment), segment.name, str(archive)]
    assert subprocess.run(run, capture_output=True, timeout=30).returncode == 0
    assert (archive / segment.name).read_bytes() == segment.read_bytes()
    assert subprocess.run(run, capture_output=True, timeout=30).returncode == 0, "re-archiving the same file is fine"
    segment.write_bytes(b"b" * 1024)
    result = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "refusing to overwrite" in result.stderr
    assert (archive / segment.name).read_bytes() == b"a" * 1024
    assert [path.name for path in archive.iterdir()] == [segment.name], "no temporary file is left behind"


def test_the_restore_command_tells_a_missing_segment_from_a_broken_archive(tmp_path):
    restore = ["bash", str(DR_DIR / "restore-wal.sh")]
    missing = subprocess.run([*restore, str(tmp_path), "000000010000000000000009", str(tmp_path / "x")], timeout=30)
    assert missing.returncode == 1, "1 tells PostgreSQL the segment is not archived (yet)"
    broken = subprocess.run(
        [*restore, str(tmp_path / "gone"), "000000010000000000000009", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert broken.returncode > 125, "a status above 125 makes PostgreSQL stop recovery"
    assert "does not exist" in broken.stderr


def test_patroni_before_4_reads_quorum_mode_as_asynchronous():
    """Why failover.md requires Patroni >= 4.0: older versions silently ignore `quorum`."""
    require_commands("patroni")
    patroni = shutil.which("patroni")
    version = subprocess.run([patroni, "--version"], capture_output=True, text=True, timeout=30).stdout.split()[-1]
    if int(version.split(".")[0]) >= 4:
        pytest.skip(f"patroni {version} understands quorum mode")
    interpreter = Path(patroni).read_text().splitlines()[0].removeprefix("#!").split()
    probe = "from patroni.utils import parse_bool; print(bool(parse_bool('quorum')))"
    result = subprocess.run([*interpreter, "-c", probe], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "False", result.stderr

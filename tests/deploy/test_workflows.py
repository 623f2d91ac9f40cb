""".github/workflows: valid against the GitHub workflow schema (check-jsonschema's bundled copy), and
what they run exists in the project."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from tests.deploy.commands import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    workflow["on"] = workflow.pop(True)
    return workflow


def _check_jsonschema(*paths) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_every_workflow_is_valid_against_the_github_workflow_schema():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml", "promote.yml"}
    result = _check_jsonschema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_misspelt_job(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github" / "workflows" / "ci.yml").read_text().replace("runs-on:", "runs_on:", 1))
    assert _check_jsonschema(broken).returncode == 1


def test_ci_runs_the_suite_against_postgres_and_redis_services():
    test = _load("ci.yml")["jobs"]["test"]
    assert {"postgres", "redis"} <= set(test["services"])
    env = test["env"]
    assert env["CI"] == "true"
    for service, variable in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        host_port = test["services"][service]["ports"][0].split(":")[0]
        assert f"127.0.0.1:{host_port}/" in env[variable]
    assert any(step.get("run") == "make test" for step in test["steps"])


def test_staging_is_released_after_the_tests_and_the_image_and_production_only_by_hand():
    release = _load("release.yml")
    assert release["on"] == {"push": {"branches": ["main"]}}
    jobs = release["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml" and "workflow_call" in _load("ci.yml")["on"]
    assert jobs["image"]["needs"] == "ci" and jobs["deploy-staging"]["needs"] == "image"
    assert jobs["deploy-staging"]["environment"]["name"] == "staging"
    promote = _load("promote.yml")
    assert list(promote["on"]) == ["workflow_dispatch"]
    assert promote["jobs"]["production"]["environment"]["name"] == "production"


def _run_lines():
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                yield from step.get("run", "").splitlines()


def test_every_command_the_workflows_run_exists():
    makefile = (ROOT / "Makefile").read_text()
    overlays = {path.name for path in (ROOT / "deploy" / "k8s" / "overlays").iterdir()}
    seen_release = set()
    for line in _run_lines():
        for target in re.findall(r"\bmake (\w[\w-]*)", line):
            assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"make {target}"
        for action, env in re.findall(r"deploy/k8s/bluegreen (\w+) (\w+)", line):
            assert action in {"deploy", "switch", "status"} and env in overlays, line
            seen_release.add((action, env))
        if "Dockerfile" in line:
            pytest.fail("build images with docker/build-push-action")
    assert {("deploy", "staging"), ("deploy", "production"), ("switch", "production")} <= seen_release
    build = _load("release.yml")["jobs"]["image"]["steps"]
    assert any(step.get("with", {}).get("file") == "deploy/Dockerfile" for step in build)

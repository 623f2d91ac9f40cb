"""No Docker engine runs here, so the compose file and the Dockerfile are parsed and every reference
they make (commands, environment variables, ports, files) is checked against the project."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from config.celery import QUEUES
from tests.deploy.commands import check_command, env_names_read_by_settings, listen_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = {name: spec for name, spec in SERVICES.items() if spec.get("image") == "algo-terminal:local"}


def test_the_stack_has_the_services_the_design_names():
    assert {"web", "worker", "beat", "postgres", "redis", "nginx", "migrate"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_each_app_service_runs_a_command_the_project_has(name):
    command = APP_SERVICES[name]["command"]
    queues = check_command(command if isinstance(command, list) else shlex.split(command))
    if queues:
        assert set(queues) == set(QUEUES), "every queue needs a consumer in the local stack"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_each_app_service_sets_only_variables_the_settings_read(name):
    names = set(APP_SERVICES[name]["environment"])
    unknown = names - env_names_read_by_settings()
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_ENV"} <= names


def test_service_urls_point_at_services_in_the_stack():
    env = APP_SERVICES["web"]["environment"]
    assert re.match(r"postgres://[^@]+@postgres:5432/\w+$", env["DATABASE_URL"])
    assert re.match(r"redis://:[^@]+@redis:6379/\d+$", env["REDIS_URL"])
    pg = SERVICES["postgres"]["environment"]
    assert (
        env["DATABASE_URL"]
        == f"postgres://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    )


def test_nginx_proxies_to_the_port_web_listens_on():
    web_port = listen_port(APP_SERVICES["web"]["command"])
    assert str(web_port) in [str(p) for p in APP_SERVICES["web"]["expose"]]
    mount = SERVICES["nginx"]["volumes"][0].split(":")[0]
    config = (ROOT / mount).read_text()
    assert f"server web:{web_port};" in config
    listen = re.search(r"listen (\d+);", config).group(1)
    assert any(str(port).endswith(f":{listen}") for port in SERVICES["nginx"]["ports"])


def _dockerfile() -> DockerfileParser:
    # Parse the file in place: assigning .content would write a Dockerfile into the working directory.
    return DockerfileParser(path=str(ROOT / "deploy" / "Dockerfile"))


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user():
    instructions = _dockerfile().structure
    froms = [i for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2
    final_stage_start = instructions.index(froms[-1])
    users = [i["value"] for i in instructions[final_stage_start:] if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_checks_its_health_on_the_health_endpoint_of_its_exposed_port():
    instructions = _dockerfile().structure
    healthcheck = next(i["value"] for i in instructions if i["instruction"] == "HEALTHCHECK")
    exposed = next(i["value"] for i in instructions if i["instruction"] == "EXPOSE")
    assert f"127.0.0.1:{exposed}/api/health" in healthcheck
    cmd = next(i["value"] for i in reversed(instructions) if i["instruction"] == "CMD")
    assert listen_port(json.loads(cmd)) == int(exposed)


def test_every_file_the_image_copies_from_the_context_exists():
    for instruction in _dockerfile().structure:
        if instruction["instruction"] == "COPY" and "--from=" not in instruction["value"]:
            sources = [s for s in instruction["value"].split() if not s.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_redis_requires_the_password_every_client_url_carries():
    password = SERVICES["redis"]["environment"]["REDIS_PASSWORD"]
    assert password.startswith("${REDIS_PASSWORD:-") and len(password) > len("${REDIS_PASSWORD:-}") + 16
    script = SERVICES["redis"]["command"][-1]
    assert "requirepass" in script and "$$REDIS_PASSWORD" in script
    for name, spec in APP_SERVICES.items():
        assert spec["environment"]["REDIS_URL"] == f"redis://:{password}@redis:6379/0", name
    health = SERVICES["redis"]["healthcheck"]["test"]
    assert health[0] == "CMD-SHELL" and "REDISCLI_AUTH" in health[1] and "$$REDIS_PASSWORD" in health[1]

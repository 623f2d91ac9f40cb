"""deploy/prometheus, deploy/alertmanager, deploy/grafana and deploy/loki, checked by the real tools
(promtool, amtool, check-jsonschema) and against what the code exports and logs."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings

from tests.deploy.commands import ROOT, require_tool
from tests.deploy.promql import exported_metric_names, grafana_query_metric_names, metric_names

PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA = ROOT / "deploy" / "grafana"
LOKI = ROOT / "deploy" / "loki"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXTERNAL = yaml.safe_load((PROMETHEUS / "external-metrics.yml").read_text())


def _run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


# --- Prometheus -----------------------------------------------------------------------------------


def test_promtool_accepts_the_scrape_configuration_and_every_rule_file():
    promtool = require_tool("promtool")
    result = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout
    result = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_when_they_should_in_promtools_unit_tests():
    promtool = require_tool("promtool")
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    result = _run(promtool, "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def _rules() -> list[dict]:
    return [
        rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]


def test_every_alert_has_a_severity_a_summary_and_an_existing_runbook():
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert (ROOT / rule["annotations"]["runbook"]).is_file(), rule["alert"]


def _dashboard_expressions() -> dict[str, str]:
    expressions = {}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expressions[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    return expressions


def _names_used() -> dict[str, set[str]]:
    """Return metric name -> where it is used, over every alert rule and dashboard."""
    used: dict[str, set[str]] = {}
    for rule in _rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for where, expr in _dashboard_expressions().items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            for name in grafana_query_metric_names(variable["query"]["query"]):
                used.setdefault(name, set()).add(f"{path.name}: variable {variable['name']}")
    return used


def _unexported(used: dict[str, set[str]], exported: set[str]) -> dict[str, set[str]]:
    external = {name for names in EXTERNAL.values() for name in names}
    return {name: where for name, where in used.items() if name not in exported | external}


@pytest.fixture(scope="module")
def exported(django_db_blocker):
    # What the web process registers: every app's metrics module (AppConfig.ready) and the HTTP
    # middleware's metrics, which exist once config.asgi has built the application.
    import config.asgi  # noqa: F401

    with django_db_blocker.unblock():
        return exported_metric_names()


def test_every_metric_named_in_an_alert_rule_or_a_dashboard_is_exported(exported):
    used = _names_used()
    assert {
        "terminal_celery_queue_oldest_task_age_seconds",
        "django_http_responses_total_by_status_view_method_total",
    } <= set(used)
    missing = _unexported(used, exported)
    assert not missing, "metrics named but exported by nothing: " + "; ".join(
        f"{name} (in {', '.join(sorted(where))})" for name, where in sorted(missing.items())
    )


def test_a_rule_naming_a_metric_nobody_exports_fails_the_check(exported):
    rule = {"alert": "OrdersRejected", "expr": 'sum(rate(terminal_orders_total{status="rejected"}[5m])) > 1'}
    used = {name: {rule["alert"]} for name in metric_names(rule["expr"])}
    assert _unexported(used, exported) == {"terminal_orders_total": {"OrdersRejected"}}


def test_every_external_metric_comes_from_a_job_prometheus_scrapes():
    jobs = {job["job_name"] for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]}
    assert set(EXTERNAL) <= jobs, f"exporters without a scrape job: {set(EXTERNAL) - jobs}"
    for names in EXTERNAL.values():
        assert not any(name.startswith(("terminal_", "django_")) for name in names), (
            "the code's own metrics are not external"
        )


def test_prometheus_finds_the_terminal_through_the_headless_services_of_each_overlay():
    from tests.deploy.test_kubernetes import OVERLAYS, render

    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    names = [
        name
        for job in config["scrape_configs"]
        if job["job_name"].startswith("terminal-")
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    ]
    assert names
    for overlay in OVERLAYS:
        docs = render(overlay)
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        for component in ("web", "worker", "feed", "strategy-runner"):
            assert f"{component}-metrics.terminal-{overlay}.svc.cluster.local" in names
            service = services[f"{component}-metrics"]["spec"]
            assert service["clusterIP"] == "None" and service["ports"][0]["targetPort"] == "metrics"


# --- PromQL name extraction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up == 0", {"up"}),
        ('sum by (queue, le) (rate(a_bucket{queue=~"orders|rms", x="by (y)"}[5m])) > 1e3', {"a_bucket"}),
        ("histogram_quantile(0.99, sum without (pod) (rate(b[$__rate_interval])))", {"b"}),
        ("x > 30 and on (instance) y == 1 unless z offset 5m", {"x", "y", "z"}),
        ("time() - c{cronjob='backup'} > 26 * 3600", {"c"}),
        ("topk(10, d) / ignoring (status) group_left e", {"d", "e"}),
    ],
)
def test_metric_names_are_read_from_promql(expr, names):
    assert metric_names(expr) == names


def test_grafana_variable_queries_name_their_metric():
    assert grafana_query_metric_names("label_values(terminal_health_check_ok, namespace)") == {
        "terminal_health_check_ok"
    }


# --- Alertmanager ---------------------------------------------------------------------------------


def _amtool_version(amtool: str) -> tuple[int, ...]:
    output = _run(amtool, "--version")
    match = re.search(r"version (\d+)\.(\d+)", output.stdout + output.stderr)
    return tuple(int(part) for part in match.groups())


def _checkable_alertmanager_config(amtool: str, tmp_path: Path) -> Path:
    """Return the configuration for amtool. Debian's amtool (0.25) predates telegram's bot_token_file
    (0.26); for it alone that one field becomes an inline token, and the test checks its path."""
    text = ALERTMANAGER.read_text()
    if _amtool_version(amtool) >= (0, 26):
        return ALERTMANAGER
    field = re.compile(r"bot_token_file: (\S+)")
    paths = field.findall(text)
    assert paths and all(path.startswith("/etc/alertmanager/secrets/") for path in paths)
    path = tmp_path / "alertmanager.yml"
    path.write_text(field.sub('bot_token: "0:checked-by-test"', text))
    return path


def test_amtool_accepts_the_alertmanager_configuration_with_email_and_telegram(tmp_path):
    amtool = require_tool("amtool")
    result = _run(amtool, "check-config", str(_checkable_alertmanager_config(amtool, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert "email_configs" in receivers["on-call"] and "telegram_configs" in receivers["on-call"]
    assert "smtp_auth_password" not in config["global"], "secrets come from files"
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "on-call"), ("warning", "operations-email")])
def test_alerts_are_routed_by_severity(tmp_path, severity, receiver):
    amtool = require_tool("amtool")
    config = _checkable_alertmanager_config(amtool, tmp_path)
    result = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        f"severity={severity}",
        "alertname=TerminalQueueLag",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


# --- Grafana --------------------------------------------------------------------------------------


def test_check_jsonschema_accepts_every_dashboard():
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(GRAFANA / "dashboard.schema.json")]
    result = _run(*command, *map(str, DASHBOARDS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_schema_rejects_a_panel_without_a_query(tmp_path):
    dashboard = json.loads(DASHBOARDS[0].read_text())
    dashboard["panels"][0]["targets"] = []
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dashboard))
    command = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(GRAFANA / "dashboard.schema.json")]
    assert _run(*command, str(broken)).returncode == 1


def test_dashboards_use_provisioned_data_sources_and_unique_ids():
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())["datasources"]
    uids = {source["uid"] for source in sources}
    seen = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in seen
        seen.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


# --- Logs -----------------------------------------------------------------------------------------


def _log_line() -> dict:
    """Return one log line as the project's LOGGING configuration writes it, parsed."""
    formatter = logging.config.DictConfigurator(django_settings.LOGGING).configure_formatter(
        django_settings.LOGGING["formatters"]["json"]
    )
    record = logging.LogRecord("terminal.probe", logging.WARNING, __file__, 1, "probe %s", ("line",), None)
    record.request_id = "0123456789abcdef0123456789abcdef"
    return json.loads(formatter.format(record))


def test_promtail_extracts_fields_every_log_line_has_and_reads_its_timestamp():
    from datetime import datetime

    line = _log_line()
    promtail = yaml.safe_load((LOKI / "promtail.yml").read_text())
    stages = promtail["scrape_configs"][0]["pipeline_stages"]
    expressions = next(stage["json"]["expressions"] for stage in stages if "json" in stage)
    for field in expressions.values():
        assert field in line, f"promtail reads {field!r}, which log lines do not have: {line}"
    timestamp = next(stage["timestamp"] for stage in stages if "timestamp" in stage)
    assert timestamp["format"] == "RFC3339Nano"
    assert datetime.fromisoformat(line[timestamp["source"]]).tzinfo is not None
    labels = next(stage["labels"] for stage in stages if "labels" in stage)
    assert "request_id" not in labels, "a label per request would explode Loki's index"


def test_logs_are_kept_180_days_and_shipped_from_both_environments():
    from tests.deploy.test_kubernetes import OVERLAYS

    loki = yaml.safe_load((LOKI / "loki.yml").read_text())
    assert loki["limits_config"]["retention_period"] == "4320h" and loki["compactor"]["retention_enabled"]
    promtail = yaml.safe_load((LOKI / "promtail.yml").read_text())
    namespaces = promtail["scrape_configs"][0]["kubernetes_sd_configs"][0]["namespaces"]["names"]
    assert sorted(namespaces) == sorted(f"terminal-{overlay}" for overlay in OVERLAYS)

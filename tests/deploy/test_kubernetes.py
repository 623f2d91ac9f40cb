"""deploy/k8s: each overlay is rendered by kustomize (kubectl's or a standalone kustomize), every
manifest it renders is validated against the Kubernetes schemas (kubernetes-validate), and what the
manifests refer to (commands, queues, settings, ports, names) is checked against the project."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

import kubernetes_validate
import pytest
import yaml

from config.celery import QUEUES
from tests.deploy.commands import ROOT, check_command, env_names_read_by_settings, listen_port, require_tool

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if not path.name.startswith("."))
KUBERNETES_VERSION = "1.30.0"  # the oldest minor the manifests promise to run on
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob"}
SECRET_NAMES = {"terminal-secrets", "terminal-backup", "terminal-tls", "terminal-redis-tls"}


def _kustomize(path) -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    return [require_tool("kubectl"), "kustomize", str(path)]


@cache
def render(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(_kustomize(K8S / "overlays" / overlay), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _of_kind(docs, kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def _pod_labels(doc: dict) -> dict:
    template = doc["spec"]["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob" else doc["spec"]["template"]
    return template["metadata"]["labels"]


def _app_containers(docs):
    """Yield (workload, container) for every container that runs the terminal's image."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            for container in _pod_spec(doc)["containers"]:
                if "algo-terminal" in container["image"]:
                    yield doc, container


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_is_valid_kubernetes(overlay):
    docs = render(overlay)
    assert len(docs) > 30
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lives_in_the_overlays_namespace(overlay):
    namespace = f"terminal-{overlay}"
    for doc in render(overlay):
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]
    assert namespace in _of_kind(render(overlay), "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_command_the_project_has(overlay):
    consumed = []
    for _workload, container in _app_containers(render(overlay)):
        consumed += check_command(container["command"])
    assert sorted(consumed) == sorted(QUEUES), "one worker Deployment per queue, each consuming its own queue"


def test_the_command_check_rejects_what_the_project_does_not_have():
    for argv in (
        ["celery", "--app", "config", "worker", "--pool", "bogus", "--queues", "orders"],
        ["celery", "--app", "config", "worker", "--queues", "nope"],
        ["python", "manage.py", "migrate", "--bogus"],
        ["python", "manage.py", "no_such_command"],
        ["gunicorn", "terminal.wsgi"],
        ["gunicorn", "--config", "terminal/no.conf.py", "--bind", "0.0.0.0:8000", "config.asgi:application"],
        ["gunicorn", "--config", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "terminal.wsgi:application"],
    ):
        with pytest.raises(AssertionError):
            check_command(argv)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_set_only_variables_the_settings_read(overlay):
    docs = render(overlay)
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("terminal-config")
    )
    read = env_names_read_by_settings()
    for workload, container in _app_containers(docs):
        env = container["env"]
        values = " ".join(str(item.get("value", "")) for item in env)
        expanded = set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", values))  # helpers for $(NAME) expansion only
        names = {item["name"] for item in env} | set(config["data"])
        unknown = names - read - expanded
        assert not unknown, f"{workload['metadata']['name']} sets variables nothing reads: {sorted(unknown)}"
        assert {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "BROKER_ENCRYPTION_KEYS",
            "AUDIT_SIGNING_KEY",
            "AUDIT_HMAC_KEYS",
            "DJANGO_ENV",
            "ALLOWED_HOSTS",
            "METRICS_PORT",
        } <= names
        for ref in container["envFrom"]:
            assert ref["configMapRef"]["name"] == config["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_by_name_and_never_defined(overlay):
    docs = render(overlay)
    assert not _of_kind(docs, "Secret")
    text = yaml.safe_dump_all(docs)
    referenced = set(re.findall(r"secretName: (\S+)", text))
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            for container in _pod_spec(doc)["containers"]:
                for item in container.get("env", []):
                    assert "value" not in item or not re.search(r"(?i)password|secret|token", item["name"]), item
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        referenced.add(ref["name"])
    assert referenced == SECRET_NAMES


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_released_images_with_a_tag(overlay):
    for doc in render(overlay):
        if doc["kind"] in WORKLOAD_KINDS:
            for container in _pod_spec(doc)["containers"]:
                name, _, tag = container["image"].rpartition(":")
                assert "/" in name or name == "postgres", f"placeholder image left: {container['image']}"
                assert tag and tag != "latest", container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_is_blue_green_with_the_live_service_selecting_one_colour(overlay):
    docs = render(overlay)
    deployments, services = _of_kind(docs, "Deployment"), _of_kind(docs, "Service")
    assert {"web-blue", "web-green"} <= set(deployments)
    live, preview = services["web"]["spec"]["selector"], services["web-preview"]["spec"]["selector"]
    assert {live["colour"], preview["colour"]} == {"blue", "green"}
    for colour in ("blue", "green"):
        matching = [name for name, d in deployments.items() if _selects(live | {"colour": colour}, _pod_labels(d))]
        assert matching == [f"web-{colour}"]
    backend = _of_kind(docs, "Ingress")["terminal"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "web"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_beat_and_the_feed_run_one_replica_replaced_never_doubled(overlay):
    deployments = _of_kind(render(overlay), "Deployment")
    for name in ("beat", "feed"):
        assert deployments[name]["spec"]["replicas"] == 1
        assert deployments[name]["spec"]["strategy"] == {"type": "Recreate"}
    # The source comes from the config map (MARKETDATA_FEED_SOURCE): see the feed's own test below.
    assert deployments["feed"]["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "python",
        "manage.py",
        "run_feed",
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_queue_has_a_worker_an_autoscaler_and_a_disruption_budget(overlay):
    docs = render(overlay)
    deployments, hpas, pdbs = (
        _of_kind(docs, "Deployment"),
        _of_kind(docs, "HorizontalPodAutoscaler"),
        _of_kind(docs, "PodDisruptionBudget"),
    )
    for queue in QUEUES:
        worker = deployments[f"worker-{queue}"]
        assert "replicas" not in worker["spec"], "the autoscaler owns the replica count"
        hpa = hpas[f"worker-{queue}"]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"worker-{queue}"}
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        assert _selects(pdbs[f"worker-{queue}"]["spec"]["selector"]["matchLabels"], _pod_labels(worker))
    for colour in ("blue", "green"):
        assert _selects(
            pdbs[f"web-{colour}"]["spec"]["selector"]["matchLabels"], _pod_labels(deployments[f"web-{colour}"])
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_long_running_pods_have_resources_probes_and_a_scraped_metrics_port(overlay):
    docs = render(overlay)
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("terminal-config")
    )
    metrics_port = int(config["data"]["METRICS_PORT"])
    for name, deployment in _of_kind(docs, "Deployment").items():
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        if name == "beat":
            continue  # runs no tasks and serves nothing; health reports its heartbeat
        assert "livenessProbe" in container, name
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["metrics"] == metrics_port
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
        if name.startswith("web-"):
            assert ports["http"] == listen_port(container["command"])
            for probe in ("startupProbe", "readinessProbe"):
                assert container[probe]["httpGet"] == {"path": "/api/health/ready", "port": "http"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_ports_that_are_served_or_needed(overlay):
    docs = render(overlay)
    policies = _of_kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    workloads = [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]
    for name, policy in policies.items():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        selected = [doc for doc in workloads if _selects(selector, _pod_labels(doc))]
        assert selected or name in {"default-deny", "allow-dns"}, f"{name} selects no pod"
        served = {
            port["containerPort"]
            for doc in selected
            for container in _pod_spec(doc)["containers"]
            for port in container.get("ports", [])
        }
        for rule in policy["spec"].get("ingress", []):
            opened = {port["port"] for port in rule["ports"]}
            assert opened <= served, f"{name} opens {opened - served}, which nothing there listens on"
        for rule in policy["spec"].get("egress", []):
            assert {port["port"] for port in rule["ports"]} <= {53, 443, 5432, 6379}, name
    for doc in workloads:
        assert any(
            _selects(p["spec"]["podSelector"].get("matchLabels", {}), _pod_labels(doc))
            for n, p in policies.items()
            if n not in {"default-deny", "allow-dns"}
        ), doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_backup_cronjob_runs_the_backup_script_with_what_it_reads(overlay):
    docs = render(overlay)
    cron = _of_kind(docs, "CronJob")["postgres-backup"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = _pod_spec(cron)
    container = pod["containers"][0]
    assert container["command"] == ["bash", "/scripts/backup.sh"]
    volume = next(v for v in pod["volumes"] if v["name"] == "script")
    script_map = _of_kind(docs, "ConfigMap")[volume["configMap"]["name"]]
    script = (ROOT / "deploy" / "postgres" / "backup.sh").read_text()
    assert script_map["data"]["backup.sh"] == script
    for item in container["env"]:
        assert "${" + item["name"] in script, f"backup.sh does not read {item['name']}"
    claim = next(v for v in pod["volumes"] if v["name"] == "backups")["persistentVolumeClaim"]["claimName"]
    assert claim in _of_kind(docs, "PersistentVolumeClaim")


def test_a_release_moves_everything_but_the_live_colour_to_the_new_image():
    require_tool("kubectl")
    new, old = "ghcr.io/example/algo-terminal:new", "ghcr.io/example/algo-terminal:old"
    result = subprocess.run(
        ["bash", str(K8S / "bluegreen"), "render", "staging", new, "green", old],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    images = {
        doc["metadata"]["name"]: _pod_spec(doc)["containers"][0]["image"]
        for doc in docs
        if doc["kind"] in {"Deployment", "Job"}
    }
    assert images.pop("web-green") == old
    assert set(images.values()) == {new}
    assert set(images) == {"web-blue", "beat", "feed", "strategy-runner", "migrate"} | {
        f"worker-{queue}" for queue in QUEUES
    }
    services = _of_kind(docs, "Service")
    assert services["web"]["spec"]["selector"]["colour"] == "green"
    assert services["web-preview"]["spec"]["selector"]["colour"] == "blue"
    assert not list((K8S / "overlays").glob(".render-*")), "the temporary overlay is removed"


def test_the_release_script_knows_every_worker():
    script = (K8S / "bluegreen").read_text()
    listed = re.search(r'^WORKERS="([^"]+)"', script, re.MULTILINE).group(1).split()
    assert sorted(listed) == sorted(f"worker-{queue}" for queue in QUEUES)


def _env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_redis_client_url_carries_the_password_by_reference_and_verifies_tls(overlay):
    docs = render(overlay)
    clients = [(w, c) for w, c in _app_containers(docs) if "REDIS_URL" in _env(c)]
    assert len(clients) >= 11
    for workload, container in clients:
        env, names = _env(container), [item["name"] for item in container["env"]]
        url = env["REDIS_URL"]["value"]  # a literal with the password expanded from the Secret
        assert re.fullmatch(
            r"rediss://:\$\(REDIS_PASSWORD\)@redis:6379/0\?ssl_cert_reqs=required&ssl_ca_certs=\S+", url
        )
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "terminal-secrets",
            "key": "REDIS_PASSWORD",
        }
        assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL"), "$(NAME) expands only earlier variables"
        ca = url.rpartition("ssl_ca_certs=")[2]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in _pod_spec(workload)["volumes"]}
        assert ca == f"{mounts['redis-tls']}/ca.crt", workload["metadata"]["name"]
        assert volumes["redis-tls"]["secret"]["secretName"] == "terminal-redis-tls"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_redis_server_requires_the_password_and_speaks_only_tls(overlay):
    docs = render(overlay)
    server = _of_kind(docs, "StatefulSet")["redis"]
    (container,) = _pod_spec(server)["containers"]
    script = container["command"][-1]
    assert "requirepass" in script and '"$REDIS_PASSWORD"' in script
    assert "--port 0" in script and "--tls-port 6379" in script and "--tls-cert-file /etc/redis-tls/tls.crt" in script
    assert _env(container)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "terminal-secrets",
        "key": "REDIS_PASSWORD",
    }
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(server)["volumes"]}
    assert mounts["redis-tls"] == "/etc/redis-tls"
    assert volumes["redis-tls"]["secret"]["secretName"] == "terminal-redis-tls"
    service = _of_kind(docs, "Service")["redis"]
    assert service["spec"]["selector"] == _pod_labels(server)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_pods_that_use_redis_may_reach_it(overlay):
    docs = render(overlay)
    policies = _of_kind(docs, "NetworkPolicy")
    policy = policies["redis"]["spec"]
    assert _selects(policy["podSelector"]["matchLabels"], _pod_labels(_of_kind(docs, "StatefulSet")["redis"]))
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    (rule,) = policy["ingress"]
    assert [port["port"] for port in rule["ports"]] == [6379]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespaceSelector or ipBlock: this namespace's pods only"
    expressions = {e["key"]: set(e["values"]) for e in peer["podSelector"]["matchExpressions"]}
    assert expressions["app.kubernetes.io/name"] == {"algo-terminal"}
    reaching = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for name, p in ((n, q["spec"]) for n, q in policies.items())
        if any(6379 in {port["port"] for port in r["ports"]} for r in p.get("egress", []))
    }
    assert (
        expressions["app.kubernetes.io/component"] == reaching == {"web", "worker", "beat", "feed", "strategy-runner"}
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_feed_runs_the_configured_source_sim_by_default_and_kite_with_its_account(overlay):
    docs = render(overlay)
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("terminal-config")
    )
    (container,) = _pod_spec(_of_kind(docs, "Deployment")["feed"])["containers"]
    assert container["command"] == ["python", "manage.py", "run_feed"]  # --source from MARKETDATA_FEED_SOURCE
    assert config["data"]["MARKETDATA_FEED_SOURCE"] == "sim"
    assert config["data"]["KITE_FEED_ACCOUNT_ID"] == "0"  # optional: none until an overlay names one
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_broker_callbacks_and_postbacks_are_served_without_an_access_log(overlay):
    """ingress-nginx logs the full request line, query string included: a Kite login's callback carries
    its request token there, so those paths have an Ingress of their own with the access log off."""
    ingresses = _of_kind(render(overlay), "Ingress")
    main, callbacks = ingresses["terminal"], ingresses["terminal-broker-callbacks"]
    off = callbacks["metadata"]["annotations"]
    assert off["nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    for name in ("proxy-body-size", "limit-rps", "limit-burst-multiplier", "ssl-redirect"):
        key = f"nginx.ingress.kubernetes.io/{name}"
        assert off[key] == main["metadata"]["annotations"][key]
    assert callbacks["spec"]["tls"] == main["spec"]["tls"]
    assert callbacks["spec"]["ingressClassName"] == main["spec"]["ingressClassName"]
    (rule,) = callbacks["spec"]["rules"]
    assert rule["host"] == main["spec"]["rules"][0]["host"]
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {"/brokers/kite/callback/", "/brokers/kite/postback/"}
    for path in paths.values():
        assert path["pathType"] == "Prefix"
        assert path["backend"] == main["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    # The paths are the application's own: the callback and the postback views answer there.
    from django.urls import resolve

    assert resolve("/brokers/kite/callback/").url_name == "broker-callback"
    assert resolve("/brokers/kite/postback/").func.__module__ == "kite.views"

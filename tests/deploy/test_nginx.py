"""deploy/nginx: `nginx -t` accepts both configurations, and the production one, run for real on
loopback ports in front of a recording upstream, terminates modern TLS, sends the security headers,
proxies websockets, limits request sizes and rates, and hides /metrics."""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.commands import ROOT, require_tool

NGINX_DIR = ROOT / "deploy" / "nginx"
HOST = "terminal.example.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "terminal.crt", directory / "terminal.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the configuration no longer contains {old!r}; update this test"
    return text.replace(old, new)


def _prefix(tmp_path: Path, site: str) -> Path:
    """Write a minimal nginx.conf under tmp_path that includes ``site``; return its path."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / name).mkdir()
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}
"""
    )
    return conf


def _nginx_test(tmp_path: Path, conf: Path) -> subprocess.CompletedProcess:
    nginx = require_tool("nginx")
    return subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _production_site(tmp_path: Path, upstream: int, https: int, plain: int) -> str:
    crt, key = _self_signed(tmp_path)
    site = (NGINX_DIR / "production.conf").read_text()
    site = _replace(site, "/etc/nginx/tls/terminal.crt", str(crt))
    site = _replace(site, "/etc/nginx/tls/terminal.key", str(key))
    site = _replace(site, "server web:8000", f"server 127.0.0.1:{upstream}")
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    site = _replace(site, "listen [::]:443 ssl http2;", "")
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{plain};")
    site = _replace(site, "listen [::]:80;", "")
    site = site.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
    return _replace(site, "root /var/www/acme;", f"root {tmp_path};")


def test_nginx_accepts_the_production_configuration(tmp_path):
    site = _production_site(tmp_path, _free_port(), _free_port(), _free_port())
    result = _nginx_test(tmp_path, _prefix(tmp_path, site))
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_nginx_accepts_the_docker_compose_configuration(tmp_path):
    site = (NGINX_DIR / "terminal.conf").read_text()
    site = _replace(site, "server web:8000;", "server 127.0.0.1:8000;")  # compose's service name, resolved here
    site = _replace(site, "listen 8080;", f"listen 127.0.0.1:{_free_port()};")
    result = _nginx_test(tmp_path, _prefix(tmp_path, site))
    assert result.returncode == 0, result.stderr


class _Recorder(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """An upstream that answers 200 with the request headers it received as JSON, and completes a
    websocket handshake when asked to upgrade."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int):
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", port), _RecorderHandler)


class _RecorderHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            headers = {}
            while (header := self.rfile.readline().decode()) not in ("\r\n", "\n", ""):
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            if int(headers.get("content-length", 0)):
                self.rfile.read(int(headers["content-length"]))
            self.server.requests.append({"method": method, "path": path, "headers": headers})
            if headers.get("upgrade", "").lower() == "websocket":
                accept = base64.b64encode(
                    hashlib.sha1(
                        (headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
                    ).digest()
                ).decode()
                self.wfile.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
                )
                return
            body = json.dumps(headers).encode()
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """The production configuration served by a real nginx in front of a recording upstream."""
    tmp_path = tmp_path_factory.mktemp("nginx")
    upstream_port, https, plain = _free_port(), _free_port(), _free_port()
    conf = _prefix(tmp_path, _production_site(tmp_path, upstream_port, https, plain))
    upstream = _Recorder(upstream_port)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    nginx = subprocess.Popen(
        [
            require_tool("nginx"),
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https), timeout=0.5).close()
            break
        except OSError:
            assert nginx.poll() is None, nginx.stderr.read().decode()
            time.sleep(0.1)
    context = ssl.create_default_context(cafile=str(tmp_path / "terminal.crt"))
    yield {"https": https, "plain": plain, "upstream": upstream, "context": context, "log": tmp_path / "access.log"}
    nginx.terminate()
    nginx.wait(timeout=10)
    upstream.shutdown()


def _connect(edge, context=None) -> http.client.HTTPSConnection:
    connection = http.client.HTTPSConnection("127.0.0.1", edge["https"], timeout=5)
    # Connected by hand so that the certificate is checked against the site's name, as a browser would.
    connection.sock = (context or edge["context"]).wrap_socket(
        socket.create_connection(("127.0.0.1", edge["https"]), timeout=5), server_hostname=HOST
    )
    return connection


def _request(edge, method, path, body=None, headers=None, context=None, connection=None):
    """Return (response, body, TLS version) of one request, on ``connection`` or a new one."""
    own = connection is None
    connection = connection or _connect(edge, context)
    version = connection.sock.version()
    connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
    response = connection.getresponse()
    content = response.read()
    if own:
        connection.close()
    return response, content, version


def test_the_edge_serves_modern_tls_only_with_security_headers(edge):
    response, content, version = _request(edge, "GET", "/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200 and version in {"TLSv1.2", "TLSv1.3"}
    assert response.getheader("Strict-Transport-Security") == "max-age=63072000; includeSubDomains; preload"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy") == "same-origin"
    assert "Server" not in response.headers or "nginx/" not in response.getheader("Server")
    seen = json.loads(content)
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == "127.0.0.1", "a client-supplied X-Forwarded-For must not pass through"
    assert len(seen["x-request-id"]) == 32

    tls12 = ssl.create_default_context(cadata=edge["context"].get_ca_certs(binary_form=True)[0])
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _request(edge, "GET", "/", context=tls12)[2] == "TLSv1.2"


def test_plain_http_redirects_to_https(edge):
    connection = http.client.HTTPConnection("127.0.0.1", edge["plain"], timeout=5)
    connection.request("GET", "/orders/?x=1", headers={"Host": HOST})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{HOST}/orders/?x=1"


def test_metrics_are_not_served_to_the_internet(edge):
    before = len(edge["upstream"].requests)
    response, _, _ = _request(edge, "GET", "/metrics")
    assert response.status == 404
    assert len(edge["upstream"].requests) == before


def test_a_body_over_one_megabyte_is_refused_before_it_reaches_the_app(edge):
    before = len(edge["upstream"].requests)
    response, _, _ = _request(edge, "POST", "/api/orders", body=b"x" * (1024 * 1024 + 1))
    assert response.status == 413
    assert len(edge["upstream"].requests) == before


def test_logins_are_rate_limited_per_client(edge):
    statuses = [_request(edge, "POST", "/login/", body=b"username=a&password=b")[0].status for _ in range(10)]
    assert statuses[:6] == [200] * 6  # one at the rate plus a burst of five
    assert 429 in statuses[6:]


def test_the_api_is_rate_limited_per_client(edge):
    connection = _connect(edge)  # one keep-alive connection: requests arrive faster than 20 a second
    statuses = [_request(edge, "GET", "/api/health", connection=connection)[0].status for _ in range(100)]
    connection.close()
    assert statuses[:35] == [200] * 35  # a burst of forty, less what earlier tests may have spent
    assert 429 in statuses


def test_websockets_are_upgraded_through_the_proxy(edge):
    sock = edge["context"].wrap_socket(
        socket.create_connection(("127.0.0.1", edge["https"]), timeout=5), server_hostname=HOST
    )
    key = base64.b64encode(b"0123456789abcdef").decode()
    sock.sendall(
        (
            f"GET /ws/user/ HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    reply = sock.recv(4096).decode()
    sock.close()
    assert reply.startswith("HTTP/1.1 101"), reply
    seen = edge["upstream"].requests[-1]
    assert seen["path"] == "/ws/user/"
    assert seen["headers"]["upgrade"] == "websocket" and seen["headers"]["connection"] == "upgrade"


def test_the_access_log_writes_paths_without_query_strings(edge):
    """A broker login's callback carries its request token in the query string: never logged."""
    path = "/brokers/kite/callback/?action=login&status=success&request_token=tok3n5ecret&state=abc"
    response, _, _ = _request(edge, "GET", path)
    assert response.status == 200
    assert any(r["path"] == path for r in edge["upstream"].requests)  # the application still gets it
    deadline = time.monotonic() + 5  # nginx writes the line once the response is sent
    while "/brokers/kite/callback/" not in (log := edge["log"].read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /brokers/kite/callback/ HTTP/1.1" in log
    assert "tok3n5ecret" not in log and "request_token" not in log


def test_the_compose_proxy_logs_broker_callbacks_and_postbacks_without_their_query_strings(tmp_path):
    """The local stack's nginx (deploy/nginx/terminal.conf) writes paths only, as the production edge does."""
    upstream_port, port = _free_port(), _free_port()
    site = (NGINX_DIR / "terminal.conf").read_text()
    site = _replace(site, "server web:8000;", f"server 127.0.0.1:{upstream_port};")
    site = _replace(site, "listen 8080;", f"listen 127.0.0.1:{port};")
    site = _replace(site, "/var/log/nginx/access.log", str(tmp_path / "access.log"))
    conf = _prefix(tmp_path, site)
    upstream = _Recorder(upstream_port)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    nginx = subprocess.Popen(
        [
            require_tool("nginx"),
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, nginx.stderr.read().decode()
                time.sleep(0.1)
        asked = {
            "GET": "/brokers/kite/callback/?action=login&status=success&request_token=tok3n5ecret&state=abc",
            "POST": "/brokers/kite/postback/?checksum=c0ffee5ecret",
        }
        for method, path in asked.items():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(method, path, body=b"{}" if method == "POST" else None, headers={"Host": "localhost"})
            assert connection.getresponse().status == 200
            connection.close()
        assert [r["path"] for r in upstream.requests] == list(asked.values())  # the application gets them whole
        log = tmp_path / "access.log"
        while (text := log.read_text() if log.exists() else "").count("/brokers/kite/") < 2:
            assert time.monotonic() < deadline + 5, text
            time.sleep(0.05)
        assert "GET /brokers/kite/callback/ HTTP/1.1" in text and "POST /brokers/kite/postback/ HTTP/1.1" in text
        assert "tok3n5ecret" not in text and "request_token" not in text and "c0ffee5ecret" not in text
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()

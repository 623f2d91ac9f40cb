"""A local AWS (S3 and KMS) on loopback for the tests: moto's server mode, a real HTTP server speaking
the AWS wire protocols, reached by boto3 and django-storages through ``endpoint_url`` as a deployment
reaches AWS. Nothing here patches boto3 in-process.

Use the ``aws`` fixture: it yields a ``LocalAws`` whose state was reset for the test. The server runs
once per test session on a free port of 127.0.0.1; the credentials are dummies set in the environment
for the session only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

REGION = "ap-south-1"
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    region: str = REGION

    def client(self, service: str):
        """A boto3 client of ``service`` (``s3``, ``kms``) pointed at the local server."""
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def reset(self) -> None:
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def _aws_server() -> Iterator[LocalAws]:
    saved = {name: os.environ.get(name) for name in _ENV}
    os.environ.update(_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield LocalAws(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws(_aws_server: LocalAws) -> LocalAws:
    """The local S3 and KMS server, emptied for this test."""
    _aws_server.reset()
    return _aws_server

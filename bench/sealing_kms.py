"""Opening sealed rows under AWS KMS envelope encryption, with and without the cache of unwrapped
data keys, against a local KMS (moto's server mode on loopback, a real HTTP server).

    python bench/sealing_kms.py [--rows 300]

On a throwaway test database it seals ``--rows`` broker credentials under KMS (one data key, as one
process seals them), then opens every row twice in a fresh process's state: once with the cache
(SEALING_KMS_CACHE_SECONDS=300) and once without it (0: every row unwraps its data key at KMS, as
a per-row envelope would). It prints the KMS Decrypt calls and the time per row of each, and the
ratio of the times (how much the cache saves; the calls are the deterministic part).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
for name, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "ap-south-1",
}.items():
    os.environ.setdefault(name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    args = parser.parse_args()

    import boto3
    import django
    from moto.server import ThreadedMotoServer

    django.setup()
    from django.conf import settings
    from django.db import connection

    from accounts.models import Organisation
    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_get, broker_credentials_set
    from core import sealing
    from infra.kms import KmsKeyService

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        client = boto3.client("kms", endpoint_url=endpoint, region_name="ap-south-1")
        key = client.create_key()["KeyMetadata"]["Arn"]
        service = KmsKeyService(key_id=key, region="ap-south-1", endpoint_url=endpoint)
        sealing.register_provider(service)
        settings.SEALING_BACKEND = "kms"
        org = Organisation.objects.create(name="Bench", slug="bench")
        for n in range(args.rows):
            account = BrokerAccount.objects.create(organisation=org, label=f"A{n}", broker="paper", client_code=f"B{n}")
            broker_credentials_set(account=account, credentials={"api_key": f"k{n}", "api_secret": f"s{n}"})
        accounts = list(BrokerAccount.objects.all())
        calls: list[int] = []
        service.client().meta.events.register("before-call.kms.Decrypt", lambda **kw: calls.append(1))

        def read(cache_seconds: int) -> tuple[int, float]:
            settings.SEALING_KMS_CACHE_SECONDS = cache_seconds
            service.forget()
            calls.clear()
            start = time.perf_counter()
            for account in accounts:
                broker_credentials_get(account=account)
            return len(calls), (time.perf_counter() - start) / len(accounts)

        cached_calls, cached = read(300)
        uncached_calls, uncached = read(0)
        print(f"rows: {len(accounts)}")
        print(f"cached:   {cached_calls} KMS Decrypt call(s), {cached * 1e6:.0f} us per row")
        print(f"uncached: {uncached_calls} KMS Decrypt call(s), {uncached * 1e6:.0f} us per row")
        print(f"ratio (uncached / cached time per row): {uncached / cached:.1f}")
    finally:
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)
        server.stop()


if __name__ == "__main__":
    main()

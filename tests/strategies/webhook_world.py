"""A running deployment with a webhook on two paper accounts (multipliers 1 and 2), for the webhook tests."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from brokers.models import BrokerAccount
from brokers.rate_limits import LocalRateLimiter
from strategies.models import AlgoId, Deployment, DeploymentAccount, StrategyDefinition
from strategies.services.signals import use_webhook_rate_limiter, webhook_secret_rotate
from tests.trading_world import World

SECRET_HEADER = "HTTP_X_WEBHOOK_SECRET"


class WebhookWorld:
    def __init__(self, world: World) -> None:
        self.world = world
        self.second = BrokerAccount.objects.create(
            organisation=world.org, label="Paper 2", broker="paper", client_code="P2"
        )
        self.algo = AlgoId.objects.create(organisation=world.org, code="ALGO-7", created_by=world.owner)
        definition = StrategyDefinition.objects.create(
            organisation=world.org, name="Signals", kind="webhook", params={}, created_by=world.owner
        )
        self.deployment = Deployment.objects.create(
            organisation=world.org,
            definition=definition,
            name="TV signals",
            kind="webhook",
            mode=Deployment.Mode.PAPER,
            algo_id=self.algo,
            status=Deployment.Status.RUNNING,
            created_by=world.owner,
        )
        DeploymentAccount.objects.create(deployment=self.deployment, account=world.account, multiplier=1)
        DeploymentAccount.objects.create(deployment=self.deployment, account=self.second, multiplier=2)
        self.secret = webhook_secret_rotate(actor=world.owner, deployment=self.deployment)
        self.url = reverse("strategies:webhook", args=[self.deployment.webhook_token])
        self.client = Client(enforce_csrf_checks=True)

    def post(self, body, *, query: str = "", raw: bytes | None = None, **headers):
        data = raw if raw is not None else __import__("json").dumps(body)
        return self.client.post(self.url + query, data=data, content_type="application/json", **headers)

    def signal(self, **fields):
        return {"secret": self.secret, **fields}


@pytest.fixture
def hooks(world) -> WebhookWorld:
    use_webhook_rate_limiter(LocalRateLimiter(max_wait=0.0))
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05, bids=[(999.95, 10_000)], asks=[(1000.05, 10_000)])
    yield WebhookWorld(world)
    use_webhook_rate_limiter(None)

"""A webhook delivery on a deployment's URL: checked (address, rate, secret, body), recorded once by
its signal id, and placed on every account of the deployment with its multiplier and algo id."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from brokers.rate_limits import LocalRateLimiter
from orders.models import Order
from strategies.models import Deployment, DeploymentEvent, WebhookSignal
from strategies.services.signals import use_webhook_rate_limiter
from tests.strategies.webhook_world import SECRET_HEADER, WebhookWorld

pytestmark = pytest.mark.django_db


def _orders(hooks: WebhookWorld):
    return Order.objects.filter(strategy=hooks.deployment.order_key).order_by("account_id", "pk")


def test_a_tradingview_signal_places_each_accounts_multiplied_order_with_the_algo_id(hooks):
    response = hooks.post(hooks.signal(action="buy", ticker="NSE:RELIANCE", contracts="3", signal_id="tv-1"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "accepted" and body["signal_id"] == "tv-1"
    orders = list(_orders(hooks))
    assert [(o.account_id, o.side, o.quantity) for o in orders] == [
        (hooks.world.account.pk, "BUY", 3),
        (hooks.second.pk, "BUY", 6),
    ]
    assert {o.source for o in orders} == {"webhook"} and {o.algo_id for o in orders} == {"ALGO-7"}
    assert {o.tag for o in orders} == {"NSE:RELIANCE"}
    assert DeploymentEvent.objects.filter(deployment=hooks.deployment, kind="signal").exists()
    assert AuditEvent.objects.filter(action="strategy.webhook.received").count() == 1


def test_a_duplicate_signal_gets_the_first_answer_and_places_nothing_more(hooks):
    first = hooks.post(hooks.signal(action="buy", ticker="RELIANCE", contracts=1, signal_id="dup"))
    again = hooks.post(hooks.signal(action="buy", ticker="RELIANCE", contracts=5, signal_id="dup"))
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["X-Webhook-Duplicate"] == "true"
    assert _orders(hooks).count() == 2


def test_the_secret_may_come_in_the_header_or_as_a_passphrase(hooks):
    body = {"action": "buy", "ticker": "RELIANCE", "contracts": 1}
    header = hooks.post(body | {"id": "h"}, **{SECRET_HEADER: hooks.secret})
    passphrase = hooks.post(body | {"id": "p", "passphrase": hooks.secret})
    assert (header.status_code, passphrase.status_code) == (200, 200)


@pytest.mark.parametrize("secret", ["", "wrong", None])
def test_a_wrong_or_missing_secret_is_refused_audited_and_places_nothing(hooks, secret):
    body = {"action": "buy", "ticker": "RELIANCE", "contracts": 1, "id": "s"}
    if secret is not None:
        body["secret"] = secret
    response = hooks.post(body)
    assert response.status_code == 403 and response.json()["code"] == "webhook_secret_invalid"
    assert not _orders(hooks).exists() and not WebhookSignal.objects.exists()
    assert AuditEvent.objects.filter(action="strategy.webhook.refused").count() == 1


def test_a_paused_deployment_answers_409_places_nothing_and_says_so_again_to_a_duplicate(hooks):
    Deployment.objects.filter(pk=hooks.deployment.pk).update(status=Deployment.Status.PAUSED)
    body = hooks.signal(action="buy", ticker="RELIANCE", contracts=1, id="paused")
    first, again = hooks.post(body), hooks.post(body)
    assert first.status_code == again.status_code == 409
    assert first.json()["code"] == again.json()["code"] == "deployment_not_running"
    assert not _orders(hooks).exists()


def test_an_unknown_symbol_is_refused_with_422_naming_it(hooks):
    response = hooks.post(hooks.signal(action="buy", ticker="NOSUCH", contracts=1, id="u"))
    assert response.status_code == 422
    assert response.json()["code"] == "webhook_symbol_unknown" and response.json()["extra"]["symbols"] == ["NSE:NOSUCH"]
    assert not _orders(hooks).exists()


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"not json", 400, "webhook_body_invalid"),
        (b"[1, 2]", 400, "webhook_body_invalid"),
        (b'{"a": NaN}', 400, "webhook_body_invalid"),
        (b'{"a": "\\ud800"}', 400, "webhook_body_invalid"),
        (b"\xff\xfe", 400, "webhook_body_invalid"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_400(hooks, raw, status, code):
    response = hooks.post(None, raw=raw)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_a_body_its_format_refuses_answers_422_naming_the_field(hooks):
    response = hooks.post(hooks.signal(symbol="RELIANCE", action="buy", qty="lots"))
    assert response.status_code == 422 and response.json()["extra"]["field"] == "qty"


def test_an_address_outside_the_allowed_ones_is_refused_with_403(hooks):
    Deployment.objects.filter(pk=hooks.deployment.pk).update(webhook_allowed_ips=["52.89.214.238/32"])
    response = hooks.post(hooks.signal(action="buy", ticker="RELIANCE", contracts=1, id="ip"))
    assert response.status_code == 403 and response.json()["code"] == "webhook_source_refused"
    Deployment.objects.filter(pk=hooks.deployment.pk).update(webhook_allowed_ips=["127.0.0.0/8"])
    assert hooks.post(hooks.signal(action="buy", ticker="RELIANCE", contracts=1, id="ip")).status_code == 200


def test_too_many_signals_are_refused_with_429_and_a_retry_after(hooks):
    codes = [hooks.post(hooks.signal(symbol="NOSUCH", action="buy", qty=1, id=str(n))).status_code for n in range(12)]
    assert codes.count(429) >= 1
    refused = hooks.post(hooks.signal(symbol="NOSUCH", action="buy", qty=1, id="late"))
    assert refused.status_code == 429 and refused.json()["code"] == "webhook_rate_limited"
    assert int(refused["Retry-After"]) >= 1


def test_an_unknown_webhook_address_answers_404():
    from django.test import Client

    response = Client().post("/hooks/strategies/nope/", data="{}", content_type="application/json")
    assert response.status_code == 404 and response.json()["code"] == "webhook_not_found"


def test_sell_closes_at_most_the_long_position_and_exit_closes_the_rest(hooks):
    hooks.post(hooks.signal(symbol="RELIANCE", action="buy", qty=5, id="b"))
    sold = hooks.post(hooks.signal(symbol="RELIANCE", action="sell", qty=9, id="s"))
    assert [(o["side"], o["quantity"]) for o in sold.json()["orders"]] == [("SELL", 5), ("SELL", 10)]
    flat = hooks.post(hooks.signal(symbol="RELIANCE", action="exit", id="x"))
    assert flat.status_code == 200 and flat.json()["orders"] == []


def test_a_target_position_trades_the_difference(hooks):
    hooks.post(hooks.signal(ticker="RELIANCE", action="buy", contracts=2, id="t1"))
    response = hooks.post(hooks.signal(ticker="RELIANCE", action="sell", position_size="-1", id="t2"))
    assert [(o["side"], o["quantity"]) for o in response.json()["orders"]] == [("SELL", 3), ("SELL", 6)]


def test_a_chartink_alert_buys_each_listed_stock_with_the_action_and_secret_from_the_url(hooks):
    body = {
        "stocks": "RELIANCE",
        "trigger_prices": "1000.5",
        "triggered_at": "2:34 pm",
        "scan_name": "Short term breakouts",
        "scan_url": "short-term-breakouts",
        "alert_name": "Alert for Short term breakouts",
        "webhook_url": "https://example.invalid/",
    }
    response = hooks.post(body, query=f"?action=buy&quantity=2&secret={hooks.secret}")
    assert response.status_code == 200, response.content
    assert [(o.side, o.quantity) for o in _orders(hooks)] == [("BUY", 2), ("BUY", 4)]
    assert hooks.post(body, query=f"?action=buy&quantity=2&secret={hooks.secret}")["X-Webhook-Duplicate"] == "true"


VALID_SHAPES = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["buy", "sell", "short", "cover", "exit", "hold", 1, None]),
        "symbol": st.sampled_from(["RELIANCE", "NOSUCH", "", "NSE:RELIANCE", "x" * 80, 5]),
        "ticker": st.sampled_from(["RELIANCE", "BSE:RELIANCE", None]),
        "qty": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=6)),
        "contracts": st.one_of(st.integers(min_value=-5, max_value=5), st.just("1e400")),
        "position_size": st.one_of(st.integers(min_value=-3, max_value=3), st.text(max_size=4)),
        "id": st.one_of(st.text(max_size=120), st.integers()),
        "stocks": st.text(max_size=30),
        "price": st.one_of(st.floats(), st.text(max_size=5)),
        "extra": st.recursive(st.none() | st.text(max_size=5), lambda c: st.lists(c, max_size=3), max_leaves=5),
    },
)


@settings(max_examples=60, suppress_health_check=list(HealthCheck), deadline=None)
@given(body=VALID_SHAPES, raw=st.one_of(st.none(), st.binary(max_size=60)))
def test_arbitrary_bodies_never_answer_500_and_place_only_when_accepted(hooks, body, raw):
    use_webhook_rate_limiter(LocalRateLimiter(max_wait=0.0))  # hypothesis sends more than a sender may
    before = Order.objects.count()
    payload = raw if raw is not None else json.dumps({**body, "secret": hooks.secret}).encode()
    response = hooks.post(None, raw=payload)
    assert response.status_code < 500, response.content
    assert set(response.json()) >= {"code", "message", "extra"} or response.json().get("status") == "accepted"
    if response.status_code != 200:
        assert Order.objects.count() == before


def test_a_signal_whose_handling_broke_is_not_held_as_in_progress_so_the_retry_is_handled(hooks, monkeypatch):
    from strategies.services import signals

    def broken(**kwargs):
        raise RuntimeError("database went away")

    body = hooks.signal(action="buy", ticker="RELIANCE", contracts=1, id="retry")
    with monkeypatch.context() as patch:
        patch.setattr(signals, "deployment_apply", broken)
        with pytest.raises(RuntimeError):
            hooks.post(body)
    assert not WebhookSignal.objects.exists()
    assert hooks.post(body).status_code == 200 and _orders(hooks).count() == 2

"""No Kite secret is stored in clear or logged: the API secret, the access and public tokens, the
login's request token and the checksums (the session exchange's and the postbacks') never reach a
database column or a log line, through a whole day's path against the local Kite server: the
credentials stored, the daily login through the terminal (Connect, Kite's login page, the
callback), an order placed and filled, its postback received and applied."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from guardian.shortcuts import assign_perm

from brokers.models import BrokerAccount, BrokerSession, InboundUpdate
from brokers.services.credentials import broker_credentials_set
from brokers.services.inbox import inbox_drain
from brokers.services.sessions import session_state
from orders.models import Order
from orders.services import place_order, reconcile_order
from orders.states import Status
from tests.kite import fake_kite as fk
from tests.kite.mapping import map_for_kite

pytestmark = pytest.mark.django_db(transaction=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _secrets(fake_kite, postbacks: list[bytes]) -> dict[str, str]:
    """Every secret the day's path handled, by name."""
    exchange = fake_kite.last("POST", "/session/token").form_dict
    secrets = {
        "api_secret": fk.API_SECRET,
        "access_token": fk.ACCESS_TOKEN,
        "public_token": fk.PUBLIC_TOKEN,
        "refresh_token": fk.REFRESH_TOKEN,
        "request_token": fk.REQUEST_TOKEN,
        "session checksum": exchange["checksum"],
    }
    assert exchange["request_token"] == fk.REQUEST_TOKEN
    for i, body in enumerate(postbacks):
        secrets[f"postback {i} checksum"] = json.loads(body)["checksum"]
    return secrets


def _trading_day(world, settings, fake_kite, client, otp_login) -> list[bytes]:
    """Store the credentials, sign in through the terminal, place an order, fill it at Kite, receive
    its postback (and a refused one) and apply it; return the postbacks sent."""
    settings.KITE_API_ROOT = fake_kite.url
    settings.KITE_LOGIN_URL = f"{fake_kite.url}/connect/login"
    account = BrokerAccount.objects.create(organisation=world.org, label="Zerodha", broker="kite", client_code="AB1234")
    broker_credentials_set(account=account, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    map_for_kite(world.equity, token=738561)

    otp_login(client, world.trader)
    started = client.post(f"/brokers/accounts/{account.pk}/connect/")
    assert started.status_code == 302
    try:
        urllib.request.build_opener(_NoRedirect).open(started["Location"])
    except urllib.error.HTTPError as answer:  # Kite's login page answers with its redirect
        back = answer.headers["Location"]
    callback = back.split("127.0.0.1", 1)[1]
    assert f"request_token={fk.REQUEST_TOKEN}" in callback
    assert client.get(callback).status_code == 302
    assert session_state(account).live
    # The same link again (a reload): refused at Kite, nothing leaks either.
    fake_kite.fail(status=403, error_type="TokenException", message="Token is invalid or has expired.")
    assert client.get(callback).status_code == 302
    assert client.post(callback).status_code == 405  # a wrong method is logged by django.request

    request = world.request(world.equity, price=Decimal("990"))
    order = place_order(actor=world.trader, account=account, request=request, source="api")
    assert order.status == Status.OPEN
    fake_kite.fill(order.broker_order_id, Decimal("989.5"))
    good = fake_kite.postback(order.broker_order_id)
    forged = fake_kite.postback(order.broker_order_id, api_secret="not-the-secret")
    url = "/brokers/kite/postback/"
    assert client.post(url, forged, content_type="application/json").status_code == 403
    assert client.post(url, good, content_type="application/json").status_code == 200
    assert client.post(url, good, content_type="application/json").status_code == 200  # a replay
    assert InboundUpdate.objects.count() == 1
    inbox_drain()
    reconcile_order(order_id=order.pk)
    assert Order.objects.get(pk=order.pk).status == Status.FILLED
    return [good, forged]


def _raw_rows(table: str, columns: list[str]) -> list[str]:
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")
        return [str(value) for row in cursor.fetchall() for value in row]


def test_no_secret_is_stored_in_clear_in_any_column(world, settings, fake_kite, client, otp_login):
    postbacks = _trading_day(world, settings, fake_kite, client, otp_login)
    secrets = _secrets(fake_kite, postbacks)

    sealed = {
        "credentials_ciphertext": _raw_rows(BrokerAccount._meta.db_table, ["credentials_ciphertext"]),
        "secrets_ciphertext": _raw_rows(BrokerSession._meta.db_table, ["secrets_ciphertext"]),
        "InboundUpdate.update": _raw_rows(InboundUpdate._meta.db_table, ["update"]),
    }
    assert all(sealed.values()), sealed  # each holds a row: the day's path wrote them
    for column, values in sealed.items():
        for name, secret in secrets.items():
            assert not any(secret in value for value in values), f"{name} in clear in {column}"

    # And nowhere else: every column of every table, the audit trail and Django's sessions included.
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        columns = [field.column for field in model._meta.concrete_fields]
        text = "\n".join(_raw_rows(table, columns))
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in clear in {table}"


def test_no_secret_reaches_a_log_record(world, settings, fake_kite, client, otp_login):
    records: list[logging.LogRecord] = []
    original = logging.Logger.callHandlers

    def capture(self, record):  # every record any logger passes to its handlers, however configured
        records.append(record)
        original(self, record)

    levels = {}
    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        levels[logger] = logger.level
        logger.setLevel(logging.DEBUG)
    logging.Logger.callHandlers = capture  # type: ignore[method-assign]
    try:
        postbacks = _trading_day(world, settings, fake_kite, client, otp_login)
    finally:
        logging.Logger.callHandlers = original  # type: ignore[method-assign]
        for logger, level in levels.items():
            logger.setLevel(level)
    secrets = _secrets(fake_kite, postbacks)

    loggers = {record.name for record in records}
    assert {"httpx", "django.request", "kite.views"} <= loggers, sorted(loggers)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    console = next(h for h in handlers if type(h.formatter).__name__ == "JsonFormatter")
    for record in records:
        texts = {"message": record.getMessage(), "args": repr(record.args)}
        if console.filter(record):  # as the production handler writes it: its filters, then its formatter
            texts["line"] = console.format(record)
        if record.exc_info:
            texts["exception"] = logging.Formatter().formatException(record.exc_info)
        for name, secret in secrets.items():
            for where, text in texts.items():
                assert secret not in text, f"{name} in the {where} of a {record.name} record: {text[:300]}"

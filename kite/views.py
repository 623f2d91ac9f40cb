"""Kite's postbacks: order updates POSTed as JSON by Kite to the app's postback URL.

Kite signs each with checksum = SHA-256(order_id + order_timestamp + api_secret) of the account it
concerns (found by Kite's ``user_id``, our ``client_code``). A good one is stored in the durable
update queue before Kite is answered (``brokers.services.inbox``). A bad checksum is refused 403;
an unknown account or order, and a replayed body, change nothing; each of those is audited.
(The daily login is the terminal's broker-session view, driven by ``KiteAdapter.login_start`` and
``login_finish``.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from audit.services import audit_record
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get
from brokers.services.inbox import inbox_receive
from core.client_ip import client_ip
from kite.adapter import KiteAdapter, update_of
from kite.records import order_from

logger = logging.getLogger(__name__)

MAX_POSTBACK_BYTES = 64 * 1024


@csrf_exempt
@require_POST
def postback(request: HttpRequest) -> HttpResponse:
    """One order update from Kite; see the module docstring."""
    ip = client_ip(request)
    if len(request.body) > MAX_POSTBACK_BYTES:
        return _refuse(ip, None, "postback_too_large", "The postback is too large.", 413)
    try:
        body = json.loads(request.body, parse_float=Decimal)  # exact, as the client reads Kite
        order = order_from(body)
        user_id, checksum, stamp = str(body["user_id"]), str(body["checksum"]), str(body["order_timestamp"])
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError):
        return _refuse(ip, None, "postback_malformed", "The postback is not a Kite order update.", 400)
    account = BrokerAccount.objects.filter(broker=KiteAdapter.code, client_code=user_id, is_active=True).first()
    if account is None:
        return _refuse(ip, None, "postback_unknown_account", f"No Kite account {user_id[:20]!r}.", 200)
    secret = broker_credentials_get(account=account).get("api_secret", "")
    expected = hashlib.sha256((order.order_id + stamp + secret).encode()).hexdigest()
    if not secret or not hmac.compare_digest(expected, checksum):
        return _refuse(ip, account, "postback_checksum_invalid", "The postback's checksum is wrong.", 403)
    if not order.tag:
        return _refuse(ip, account, "postback_unknown_order", "The order carries no tag of ours.", 200)
    try:
        with transaction.atomic():
            inbox_receive(
                [update_of(account.pk, order)], source="postback", digest=hashlib.sha256(request.body).hexdigest()
            )
    except IntegrityError:
        return _refuse(ip, account, "postback_replayed", "This postback was received before.", 200)
    return HttpResponse(status=200)


def _refuse(ip: str | None, account: BrokerAccount | None, code: str, message: str, status: int) -> HttpResponse:
    """Audit a postback that changes nothing; answer Kite (200 for one it should not send again)."""
    logger.warning("kite postback refused: %s", code)
    audit_record(
        actor="system:kite",
        action="broker.postback_refused",
        target=account,
        payload={"broker": "kite", "code": code, "message": message},
        ip=ip,
    )
    if status == 200:
        return HttpResponse(status=200)
    return JsonResponse({"code": code, "message": message, "extra": {}}, status=status)

"""Webhook signals: a delivery on a deployment's URL becomes intents placed on each of its accounts.

``webhook_receive`` is the one path, in this order, each step refusing with a typed error and placing
nothing: the deployment by its URL token (404), the sender's address against its allowed ones (403),
the per-deployment rate limit (429), the secret (403, compared in constant time with its SHA-256),
the body (400 not a JSON object, 422 a field its format refuses). Then the signal is recorded under
its id (``WebhookSignal``, unique per deployment): a duplicate answers what the first delivery
answered. After that every answer is stored with the signal: a deployment not running (409), an
unknown symbol (422), or the intents placed through ``strategies.services.execution.deployment_apply``
(``source="webhook"``), each account's quantity multiplied and its order carrying the algo id.

Actions, per symbol, on the deployment's own position in it (one leg per symbol, ``"NSE:RELIANCE"``,
in base quantity, read from the first active account's trades divided by its multiplier): ``buy``
buys, ``short`` sells, ``sell`` sells at most the long position (all of it when no quantity is
given), ``cover`` buys back at most the short one, ``exit`` closes it, and ``target`` (TradingView's
``position_size``) trades the difference to the position asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from brokers.adapters.base import BrokerRateLimited
from brokers.rate_limits import LocalRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from core.errors import ApplicationError
from marketdata.hours import IST
from marketdata.models import Instrument
from strategies.contract import Intent
from strategies.errors import (
    DeploymentInvalid,
    WebhookBodyInvalid,
    WebhookDeploymentNotRunning,
    WebhookNotFound,
    WebhookRateLimited,
    WebhookSecretInvalid,
    WebhookSignalInProgress,
    WebhookSourceRefused,
    WebhookSymbolUnknown,
)
from strategies.models import Deployment, DeploymentAccount, DeploymentEvent, WebhookSignal
from strategies.selectors import deployment_positions
from strategies.services.deployments import log_event, require_operator
from strategies.services.execution import deployment_apply
from strategies.webhooks import Signal, body_secret, derived_signal_id, parse_signal

MAX_BODY_BYTES = 16_384
# Per deployment: bursts of a few alerts at once (a ChartInk scan, several TradingView alerts on one
# bar close) pass; a runaway sender is held to one a second on average.
RATE_LIMITS = (
    RateLimit("webhook-second", 10, 1.0),
    RateLimit("webhook-minute", 60, 60.0),
)
_limiter: RateLimiter | None = None


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the webhook answers: an HTTP status and a JSON body (repeated to duplicates)."""

    status: int
    body: dict[str, Any]
    duplicate: bool = False


@dataclass
class _Leg:
    instrument_id: int
    product: str
    net: int = 0
    products: dict[str, int] = field(default_factory=dict)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def webhook_secret_rotate(*, actor, deployment: Deployment) -> str:
    """Give the deployment a new webhook secret and return it: the only time it is seen, as only its
    SHA-256 is kept; the old one stops working. Raises StrategyForbidden (403) or a broker account
    error unless the actor may run the deployment (``require_operator``)."""
    require_operator(actor=actor, deployment=deployment)
    secret = secrets.token_urlsafe(24)
    with transaction.atomic():
        Deployment.objects.filter(pk=deployment.pk).update(webhook_secret_sha256=secret_sha256(secret))
        audit_record(
            actor=actor,
            action="strategy.webhook.secret_rotated",
            target=deployment,
            payload={"deployment_id": deployment.pk},
        )
        log_event(deployment, DeploymentEvent.Kind.LIFECYCLE, "webhook secret set")
    deployment.webhook_secret_sha256 = secret_sha256(secret)
    return secret


def clean_allowed_ips(allowed_ips: object) -> list[str]:
    """The addresses as normalised networks (at most 20); raises DeploymentInvalid (422, field
    ``webhook_allowed_ips``) naming a malformed entry."""
    if not isinstance(allowed_ips, list | tuple) or len(allowed_ips) > 20:
        raise DeploymentInvalid("Give at most 20 addresses.", extra={"field": "webhook_allowed_ips"})
    networks = []
    for entry in allowed_ips:
        try:
            networks.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError:
            raise DeploymentInvalid(
                f"{str(entry)[:60]!r} is not an IP address or network.", extra={"field": "webhook_allowed_ips"}
            ) from None
    return networks


def webhook_allowed_ips_set(*, actor, deployment: Deployment, allowed_ips: object) -> list[str]:
    """Set the addresses (IPs or CIDR networks, at most 20; none: any) the deployment's webhook accepts
    signals from; return them normalised. Raises DeploymentInvalid (422) as ``clean_allowed_ips``,
    StrategyForbidden (403) unless the actor may run the deployment."""
    require_operator(actor=actor, deployment=deployment)
    networks = clean_allowed_ips(allowed_ips)
    with transaction.atomic():
        Deployment.objects.filter(pk=deployment.pk).update(webhook_allowed_ips=networks)
        audit_record(
            actor=actor,
            action="strategy.webhook.allowed_ips_set",
            target=deployment,
            payload={"deployment_id": deployment.pk, "allowed_ips": networks},
        )
    deployment.webhook_allowed_ips = networks
    return networks


def _rate_limiter() -> RateLimiter:
    global _limiter
    if _limiter is None:
        # No waiting: a webhook over its limit is answered 429 at once, its sender retries.
        _limiter = (
            RedisRateLimiter(settings.REDIS_URL, prefix="strategies:webhook:", max_wait=0.0)
            if settings.REDIS_URL
            else LocalRateLimiter(max_wait=0.0)
        )
    return _limiter


def use_webhook_rate_limiter(limiter: RateLimiter | None) -> None:
    """Install the webhook limiter (None: the default again on next use); for tests."""
    global _limiter
    _limiter = limiter


def _ip_allowed(deployment: Deployment, ip: str | None) -> bool:
    allowed = deployment.webhook_allowed_ips or []
    if not allowed:
        return True
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(str(entry), strict=False):
                return True
        except ValueError:
            continue
    return False


def _clean_json(value: Any, depth: int = 0) -> Any:
    """Refuse what a JSON column cannot store (NUL, lone surrogates) and absurd nesting."""
    if depth > 20:
        raise WebhookBodyInvalid("The body is nested too deeply.", extra={"field": "body"})
    if isinstance(value, str):
        if "\x00" in value:
            raise WebhookBodyInvalid("The body contains a NUL character.", extra={"field": "body"})
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookBodyInvalid("The body contains an unpaired surrogate.", extra={"field": "body"}) from None
        return value
    if isinstance(value, dict):
        return {_clean_json(k, depth + 1): _clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v, depth + 1) for v in value]
    return value


def _constant(name: str) -> Any:
    raise WebhookBodyInvalid(f"{name} is not a JSON number.", extra={"field": "body"})


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; raises WebhookBodyInvalid (400) for anything else."""
    if len(raw) > MAX_BODY_BYTES:
        raise WebhookBodyInvalid(f"The body is over {MAX_BODY_BYTES} bytes.", extra={"field": "body"})
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookBodyInvalid("The body is not JSON.", extra={"field": "body"}) from None
    if not isinstance(body, dict):
        raise WebhookBodyInvalid("The body must be a JSON object.", extra={"field": "body"})
    return _clean_json(body)


def _refuse(deployment: Deployment, error: ApplicationError, ip: str | None) -> None:
    with transaction.atomic():
        audit_record(
            actor="system:webhook",
            action="strategy.webhook.refused",
            target=deployment,
            payload={"deployment_id": deployment.pk, "code": error.code},
            ip=ip,
        )
        DeploymentEvent.objects.create(
            deployment=deployment,
            kind=DeploymentEvent.Kind.REJECTION,
            message=f"Webhook refused: {error.message}"[:500],
            data={"code": error.code, "ip": ip},
        )
    raise error


def webhook_receive(
    *,
    token: str,
    body: bytes,
    header_secret: str | None,
    query: Mapping[str, str],
    ip: str | None,
    now: datetime | None = None,
) -> WebhookAnswer:
    """Handle one delivery on the webhook whose URL token is ``token``; return the answer to send.

    Raises (placing nothing, recording no signal) WebhookNotFound (404), WebhookSourceRefused (403),
    WebhookRateLimited (429), WebhookSecretInvalid (403), WebhookBodyInvalid (400) and
    WebhookPayloadInvalid (422). Once the signal is recorded under its id, refusals are answered,
    and stored for duplicates, rather than raised: 409 ``deployment_not_running``, 422
    ``webhook_symbol_unknown``; a delivery of an id still being handled raises WebhookSignalInProgress (409).
    """
    now = now or timezone.now()
    deployment = Deployment.objects.filter(webhook_token=token).first() if len(token) <= 40 else None
    if deployment is None:
        raise WebhookNotFound("No webhook at this address.")
    if not _ip_allowed(deployment, ip):
        _refuse(
            deployment,
            WebhookSourceRefused("This address may not send signals to this webhook.", extra={"ip": ip}),
            ip,
        )
    try:
        _rate_limiter().acquire(f"dep{deployment.pk}", RATE_LIMITS)
    except BrokerRateLimited as limited:
        raise WebhookRateLimited(
            "Too many signals for this deployment; try again shortly.",
            extra={"retry_after": limited.extra.get("retry_after")},
        ) from None
    parsed = parse_body(body)
    secret = header_secret or body_secret(parsed) or query.get("secret") or ""
    expected = deployment.webhook_secret_sha256
    if not expected or not hmac.compare_digest(secret_sha256(secret), expected):
        _refuse(deployment, WebhookSecretInvalid("The webhook secret is missing or wrong."), ip)
    signal = parse_signal(parsed, query=query)
    local = now.astimezone(IST)
    signal_id = signal.signal_id or derived_signal_id(
        parsed,
        day=local.date().isoformat(),
        minute=None if signal.source == "chartink" else local.strftime("%H:%M"),
    )
    stored = {k: v for k, v in parsed.items() if k not in ("secret", "passphrase")}
    try:
        with transaction.atomic():
            record = WebhookSignal.objects.create(
                deployment=deployment, signal_id=signal_id, source=signal.source, ip=ip, payload=stored, result={}
            )
    except IntegrityError:
        first = WebhookSignal.objects.filter(deployment=deployment, signal_id=signal_id).first()
        if first is None or not first.result:
            raise WebhookSignalInProgress(
                "This signal's first delivery is still being handled.", extra={"signal_id": signal_id}
            ) from None
        return WebhookAnswer(first.result["status"], first.result["body"], duplicate=True)
    try:
        answer = _act(deployment, record, signal)
    except ApplicationError as error:
        answer = _error_answer(signal_id, error)
    except Exception:
        # Nothing answered: free the id so the sender's retry is handled, not refused as in progress.
        WebhookSignal.objects.filter(pk=record.pk, result={}).delete()
        raise
    with transaction.atomic():
        WebhookSignal.objects.filter(pk=record.pk).update(result={"status": answer.status, "body": answer.body})
        audit_record(
            actor="system:webhook",
            action="strategy.webhook.received",
            target=deployment,
            payload={
                "deployment_id": deployment.pk,
                "signal_id": signal_id,
                "source": signal.source,
                "status": answer.status,
                "code": answer.body.get("code", "accepted"),
            },
            ip=ip,
        )
    return answer


def _error_answer(signal_id: str, error: ApplicationError) -> WebhookAnswer:
    return WebhookAnswer(error.status, error.as_dict() | {"signal_id": signal_id})


def _act(deployment: Deployment, record: WebhookSignal, signal: Signal) -> WebhookAnswer:
    """Turn the recorded signal into intents and place them; the answer says what happened."""
    deployment.refresh_from_db()
    event = {"signal_id": record.signal_id, "source": signal.source}
    if deployment.status != Deployment.Status.RUNNING:
        error = WebhookDeploymentNotRunning(
            f"The deployment is {deployment.status}: the signal placed nothing.",
            extra={"status": deployment.status},
        )
        _log(deployment, DeploymentEvent.Kind.REJECTION, f"Signal {record.signal_id}: {error.message}", event)
        return _error_answer(record.signal_id, error)
    try:
        intents = _intents(deployment, record, signal)
    except WebhookSymbolUnknown as error:
        _log(deployment, DeploymentEvent.Kind.REJECTION, f"Signal {record.signal_id}: {error.message}", event)
        return _error_answer(record.signal_id, error)
    _log(
        deployment,
        DeploymentEvent.Kind.SIGNAL,
        f"Signal {record.signal_id} ({signal.source}): {len(intents)} order(s) per account.",
        event | {"intents": [{"leg": i.leg, "side": i.side, "quantity": i.quantity} for i in intents]},
    )
    placed = deployment_apply(deployment=deployment, intents=intents, source="webhook") if intents else []
    return WebhookAnswer(
        200,
        {
            "signal_id": record.signal_id,
            "status": "accepted",
            "orders": [
                {
                    "account_id": row.account_id,
                    "key": row.key,
                    "leg": row.leg,
                    "side": row.side,
                    "quantity": row.quantity,
                    "status": row.status,
                    "order_id": row.order_id,
                    "message": row.message,
                }
                for row in placed
            ],
        },
    )


def _log(deployment: Deployment, kind: str, message: str, data: dict) -> None:
    log_event(deployment, kind, message, **data)


def _legs(deployment: Deployment) -> dict[str, _Leg]:
    """The deployment's own positions per leg in base quantity: the first active account's, divided by
    its multiplier (every account receives the same intents, multiplied)."""
    first = (
        DeploymentAccount.objects.filter(deployment=deployment, status=DeploymentAccount.Status.ACTIVE)
        .order_by("pk")
        .first()
    )
    if first is None:
        return {}
    legs: dict[str, _Leg] = {}
    for position in deployment_positions(deployment=deployment):
        if position.account_id != first.account_id or not position.net_quantity:
            continue
        leg = legs.setdefault(position.leg, _Leg(position.instrument_id, position.product))
        base = abs(position.net_quantity) // first.multiplier * (1 if position.net_quantity > 0 else -1)
        leg.net += base
        leg.products[position.product] = leg.products.get(position.product, 0) + base
    for leg in legs.values():
        leg.product = max(leg.products, key=lambda p: abs(leg.products[p]))
    return legs


def _intents(deployment: Deployment, record: WebhookSignal, signal: Signal) -> list[Intent]:
    """The intents of a signal: every symbol resolved first (an unknown one refuses the whole signal)."""
    wanted = {(o.exchange, o.symbol) for o in signal.orders}
    found = {
        (i.exchange, i.tradingsymbol): i
        for i in Instrument.objects.filter(tradingsymbol__in=[s for _, s in wanted], is_active=True)
        if (i.exchange, i.tradingsymbol) in wanted
    }
    missing = sorted(f"{e}:{s}" for e, s in wanted - found.keys())
    if missing:
        raise WebhookSymbolUnknown(
            f"Unknown symbol{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.",
            extra={"field": "symbol", "symbols": missing},
        )
    legs = _legs(deployment)
    orders: list[tuple[str, int, str, int, str]] = []  # leg, instrument, side, quantity, product
    if signal.exit_all:
        for name, leg in sorted(legs.items()):
            if leg.net:
                orders.append((name, leg.instrument_id, "SELL" if leg.net > 0 else "BUY", abs(leg.net), leg.product))
    for order in signal.orders:
        name = f"{order.exchange}:{order.symbol}"[:40]
        instrument = found[(order.exchange, order.symbol)]
        held = legs.get(name)
        net = held.net if held else 0
        product = held.product if held and order.action in ("sell", "cover", "exit") else signal.product
        side, quantity = _order_for(order.action, order.quantity, order.target, net)
        if quantity > 0:
            orders.append((name, instrument.pk, side, quantity, product))
    return [
        Intent(
            leg=leg,
            instrument_id=instrument_id,
            side=side,  # type: ignore[arg-type]  # "BUY" or "SELL", from _order_for and the exit above
            quantity=quantity,
            product=product,
            reason=f"webhook {signal.source} {record.signal_id}"[:200],
            key=f"wh{record.pk}:{index}",
        )
        for index, (leg, instrument_id, side, quantity, product) in enumerate(orders)
    ]


def _order_for(action: str, quantity: int | None, target: int | None, net: int) -> tuple[str, int]:
    """(side, base quantity) that carries the action out from the net position ``net`` (0: nothing)."""
    if action == "buy":
        return "BUY", quantity or 0
    if action == "short":
        return "SELL", quantity or 0
    if action == "sell":
        return "SELL", min(quantity or net, net) if net > 0 else 0
    if action == "cover":
        return "BUY", min(quantity or -net, -net) if net < 0 else 0
    if action == "exit":
        return ("SELL" if net > 0 else "BUY"), abs(net)
    delta = (target or 0) - net
    return ("BUY" if delta > 0 else "SELL"), abs(delta)

"""An organisation's Telegram bot: the token is verified with getMe against the Bot API before it is
saved, sealed and bound to the organisation's row; a refused token is a 422 naming the field and
saves nothing; only the Owner and Admins set it; every change is audited."""

import json

import pytest

from alerts.models import TelegramBot
from audit.models import AuditEvent
from core import sealing
from tests.alerts.telegram_server import VALID_TOKEN
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
URL = "/api/v1/orgs/acme/telegram"


def put(client, body):
    return client.put(URL, data=json.dumps(body), content_type="application/json")


def test_the_owner_saves_a_verified_token_sealed_and_bound_to_the_organisation(world, client, bot_api):
    login_with_otp(client, world.owner)
    response = put(client, {"token": VALID_TOKEN, "chat_id": "-100200300"})
    assert response.status_code == 200, response.content
    assert response.json()["bot_username"] == "acme_alerts_bot"
    assert [c.method for c in bot_api.calls] == ["getMe"]
    bot = TelegramBot.objects.get(organisation=world.org)
    assert VALID_TOKEN not in bot.token_sealed
    assert sealing.decrypt(bot.token_sealed, associated_data=TelegramBot.binding(world.org.pk)).decode() == VALID_TOKEN
    with pytest.raises(sealing.SecretError):  # copied onto another organisation's row, it does not open
        sealing.decrypt(bot.token_sealed, associated_data=TelegramBot.binding(world.org.pk + 1))
    event = AuditEvent.objects.get(action="alert.telegram_set")
    assert VALID_TOKEN not in json.dumps(event.payload_data)


def test_a_token_telegram_refuses_is_a_422_naming_the_field_and_nothing_is_saved(world, client, bot_api):
    login_with_otp(client, world.owner)
    response = put(client, {"token": "123456789:AAHsomeOtherTokenThatTelegramRefuses", "chat_id": "42"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "token_refused" and "token" in body["extra"]["fields"]
    assert "Unauthorized" in body["message"]
    assert not TelegramBot.objects.exists() and not AuditEvent.objects.filter(action="alert.telegram_set").exists()


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"token": "not a token"}, "token", "token_malformed"),
        ({"token": VALID_TOKEN + "\x00"}, "token", "token_malformed"),
        ({"token": VALID_TOKEN, "chat_id": "x" * 65}, "chat_id", "chat_id_malformed"),
    ],
)
def test_a_malformed_token_or_chat_is_refused_before_telegram_is_asked(world, client, bot_api, body, field, code):
    login_with_otp(client, world.owner)
    response = put(client, body)
    assert response.status_code in (400, 422)
    if response.status_code == 422:
        assert response.json()["code"] == code and field in response.json()["extra"]["fields"]
    assert bot_api.calls == [] and not TelegramBot.objects.exists()


def test_telegram_unreachable_refuses_the_token(world, client, settings):
    settings.ALERTS_TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    login_with_otp(client, world.owner)
    response = put(client, {"token": VALID_TOKEN})
    assert response.status_code == 422 and response.json()["code"] == "token_refused"


def test_a_trader_may_not_set_the_bot(world, client, bot_api):
    login_with_otp(client, world.trader)
    assert put(client, {"token": VALID_TOKEN}).status_code == 403
    assert not TelegramBot.objects.exists()


def test_the_telegram_page_verifies_and_shows_the_bot(world, client, bot_api):
    login_with_otp(client, world.admin)
    page = "/orgs/acme/telegram/"
    assert client.get(page).status_code == 200
    refused = client.post(page, {"token": "123456789:AAHsomeOtherTokenThatTelegramRefuses", "chat_id": "42"})
    assert refused.status_code == 422 and b'data-field="token"' in refused.content
    saved = client.post(page, {"token": VALID_TOKEN, "chat_id": "42"}, follow=True)
    assert b"@acme_alerts_bot" in saved.content
    login_with_otp(client, world.trader)
    assert client.get(page).status_code == 403


def test_removing_the_bot_is_audited(world, client, bot_api):
    login_with_otp(client, world.owner)
    put(client, {"token": VALID_TOKEN})
    assert client.delete(URL).status_code == 204
    assert not TelegramBot.objects.exists()
    assert AuditEvent.objects.filter(action="alert.telegram_removed").count() == 1


def test_key_rotation_re_seals_the_bot_tokens_under_the_new_key(world, settings):
    import io
    import os

    from django.core.management import call_command

    settings.BROKER_ENCRYPTION_KEYS = {"old": os.urandom(32), "new": os.urandom(32)}
    settings.BROKER_ENCRYPTION_KEY_ID = "old"
    binding = TelegramBot.binding(world.org.pk)
    TelegramBot.objects.create(
        organisation=world.org,
        bot_username="acme_alerts_bot",
        token_sealed=sealing.encrypt(VALID_TOKEN.encode(), associated_data=binding),
    )
    settings.BROKER_ENCRYPTION_KEY_ID = "new"
    out = io.StringIO()
    call_command("rotate_keys", stdout=out, stderr=io.StringIO())
    del settings.BROKER_ENCRYPTION_KEYS["old"]
    bot = TelegramBot.objects.get()
    assert sealing.key_id_of(bot.token_sealed) == "new"
    assert sealing.decrypt(bot.token_sealed, associated_data=binding).decode() == VALID_TOKEN

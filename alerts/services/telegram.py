"""An organisation's Telegram bot: the token verified with the Bot API's getMe before it is saved,
sealed by core.sealing bound to the organisation's row; for its Owner and Admins; audited."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Organisation
from alerts.errors import TelegramInvalid
from alerts.models import TelegramBot
from alerts.telegram import TOKEN_SHAPE, TelegramClient
from audit.services import audit_record
from core import sealing


def _field(field: str, code: str, message: str) -> TelegramInvalid:
    return TelegramInvalid(
        f"{field}: {message}", code=code, extra={"fields": {field: {"code": code, "message": message}}}
    )


def telegram_bot_set(
    *, actor, organisation: Organisation, token: str, chat_id: str, ip: str | None = None
) -> TelegramBot:
    """Verify ``token`` (its shape, then getMe) and save it with the default ``chat_id``; return the row.

    Raises TelegramInvalid naming the field (``token`` or ``chat_id``); nothing is saved then. The
    caller has checked that ``actor`` manages ``organisation``.
    """
    token, chat_id = (token or "").strip(), (chat_id or "").strip()
    if "\x00" in token or not TOKEN_SHAPE.match(token):
        raise _field("token", "token_malformed", "a bot token reads <digits>:<letters>, as @BotFather gives it.")
    if "\x00" in chat_id or len(chat_id) > 64 or (chat_id and not chat_id.lstrip("-@").replace("_", "").isalnum()):
        raise _field("chat_id", "chat_id_malformed", "a chat id is a number (or @channelname), up to 64 characters.")
    answer = TelegramClient(token).get_me()
    if not answer.ok or not answer.result or not answer.result.get("is_bot"):
        reason = answer.description or "no answer"
        raise _field("token", "token_refused", f"Telegram refused this token ({reason}).")
    username = str(answer.result.get("username", ""))[:64]
    with transaction.atomic():
        bot, created = TelegramBot.objects.select_for_update().get_or_create(
            organisation=organisation,
            defaults={"token_sealed": "-", "bot_username": username, "chat_id": chat_id, "updated_by": actor},
        )
        bot.token_sealed = sealing.encrypt(token.encode(), associated_data=TelegramBot.binding(organisation.pk))
        bot.bot_username, bot.chat_id, bot.updated_by = username, chat_id, actor
        bot.save()
        audit_record(
            actor=actor,
            action="alert.telegram_set",
            target=organisation,
            payload={"organisation_id": organisation.pk, "bot": username, "chat_id": chat_id, "new": created},
            ip=ip,
        )
    return bot


def telegram_bot_remove(*, actor, organisation: Organisation, ip: str | None = None) -> bool:
    """Remove the organisation's bot (alerts stop sending to Telegram); return whether there was one."""
    with transaction.atomic():
        deleted, _ = TelegramBot.objects.filter(organisation=organisation).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="alert.telegram_removed",
                target=organisation,
                payload={"organisation_id": organisation.pk},
                ip=ip,
            )
    return bool(deleted)

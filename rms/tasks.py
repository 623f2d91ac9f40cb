"""RMS tasks (queue "rms"): the mark-to-market monitor."""

from __future__ import annotations

from celery import current_app, shared_task


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def mtm_monitor() -> list[int]:
    """Find accounts whose loss today (realised plus MTM) reached their daily limit and ask the OMS to
    halt them (account kill switch: cancel, square off). Returns the account ids. Idempotent: an account
    already halted is skipped."""
    from rms.selectors import accounts_breaching_daily_loss

    breaching = accounts_breaching_daily_loss()
    for account_id, loss, limit in breaching:
        # By task name: RMS decides, the OMS acts, and rms never imports orders.
        current_app.send_task(
            "orders.tasks.kill_switch_engage_task",
            args=["account", account_id, f"daily loss {loss} reached the limit {limit}"],
        )
    return [account_id for account_id, _, _ in breaching]

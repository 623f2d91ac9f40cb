"""The Celery application: tasks are autodiscovered from each app's tasks.py.

Queues are per domain so that a flood of one kind of work (reports, say) never delays orders; the
Kubernetes manifests run and autoscale one worker Deployment per queue.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_shutdown, worker_shutdown
from kombu import Queue

from core.env import env_int
from infra import queues  # noqa: F401  (stamps each message with its publish time)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

QUEUES = ("default", "orders", "strategies", "rms", "marketdata", "reports")

app = Celery("terminal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "default"
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_routes = {
    "orders.tasks.*": {"queue": "orders"},
    "brokers.tasks.*": {"queue": "orders"},  # broker order updates, applied by the order system
    "strategies.tasks.*": {"queue": "strategies"},
    "rms.tasks.*": {"queue": "rms"},
    "marketdata.tasks.*": {"queue": "marketdata"},
    "audit.tasks.*": {"queue": "reports"},
    "compliance.tasks.*": {"queue": "reports"},  # large exports and their expiry
    "retention.tasks.*": {"queue": "reports"},
}
app.conf.beat_schedule = {
    # Lets /api/health tell a dead beat from an idle one.
    "beat-heartbeat": {"task": "infra.tasks.beat_heartbeat", "schedule": 30.0},
    # Every sealed field moved onto the current key (a new local key id or KMS key made current),
    # in batches under row locks; a stopped run is finished by the next (docs/runbooks/key-rotation.md).
    "keys-rotate": {
        "task": "infra.tasks.rotate_keys",
        "schedule": float(env_int("KEY_ROTATION_INTERVAL_SECONDS", 3600, minimum=60, maximum=7 * 86400)),
    },
    # Intraday (MIS) positions are closed at 15:15 IST (CELERY_TIMEZONE is Asia/Kolkata).
    "orders-square-off-intraday": {
        "task": "orders.tasks.square_off_intraday_task",
        "schedule": crontab(hour=15, minute=15, day_of_week="mon-fri"),
    },
    "orders-reconcile-unknown": {"task": "orders.tasks.reconcile_unknown_orders", "schedule": 60.0},
    # Broker order updates received but not applied (a drain queued after receipt that was lost).
    "brokers-drain-update-inbox": {"task": "brokers.tasks.drain_update_inbox", "schedule": 5.0},
    # Accounts past their daily loss limit (realised + MTM) are halted and squared off.
    "rms-mtm-monitor": {"task": "rms.tasks.mtm_monitor", "schedule": 5.0},
    # Failed credentials of ended windows, each written as one auth.denied_repeated (accounts.failures).
    "accounts-auth-failures-flush": {"task": "accounts.tasks.auth_failures_flush", "schedule": 30.0},
    # Signs the audit chain heads into a checkpoint outside the database; verify_audit fails when the
    # newest is older than this interval plus AUDIT_CHECKPOINT_GRACE_SECONDS (settings reads it too).
    "audit-checkpoint": {
        "task": "audit.tasks.audit_checkpoint",
        "schedule": float(env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 60, minimum=10, maximum=3600)),
    },
    # Export files older than COMPLIANCE_EXPORT_RETENTION_DAYS are removed from their storage.
    "compliance-expire-exports": {"task": "compliance.tasks.expire_exports", "schedule": 3600.0},
    # The months just closed, archived once to object storage (docs/retention.md); 02:30 IST on the 1st.
    "retention-archive-closed-months": {
        "task": "retention.tasks.archive_closed_months",
        "schedule": crontab(day_of_month=1, hour=2, minute=30),
    },
    # Candle partitions for this month and the next two, so ticks never arrive before their table.
    "marketdata-candle-partitions": {"task": "marketdata.tasks.ensure_candle_partitions", "schedule": 6 * 3600.0},
    # Bar-driven deployments evaluated each minute, a few seconds after it turns (the feed stores the
    # closed bar first); strategies.runtime.SETTLE_SECONDS is that delay.
    "strategies-bar-closes": {
        "task": "strategies.tasks.dispatch_bar_closes",
        "schedule": crontab(minute="*"),
        "options": {"countdown": 6},
    },
    # Alert notifications whose delivery task was lost (queued on commit, the broker down) go out again.
    "alerts-outbox-sweep": {"task": "alerts.tasks.sweep_outbox", "schedule": 60.0},
    # Kite's instruments dump is generated once a day before the open: the master and the Kite mapping.
    # The morning's first Kite sign-in queues it too (the download needs a session); this run is the
    # safety net and waits, without failing, while nobody has signed in (kite/master_refresh.py).
    "kite-instruments": {"task": "kite.tasks.refresh_kite_instruments", "schedule": crontab(hour=8, minute=15)},
}
app.autodiscover_tasks()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _drain(**_: object) -> None:
    """A stopping worker (each prefork child, or the main process of a solo or threads pool) runs the
    shutdown drains the apps registered (the order changes its tasks queued: infra.lifespan, bounded)."""
    from infra import lifespan

    lifespan.drain()

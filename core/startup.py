"""Turn a configuration error into one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

from core.env import EnvError


def settings_or_exit() -> None:
    """Load the settings now; on an EnvError print ``error: ...`` and exit with status 2."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching an attribute forces the settings to load
    except EnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

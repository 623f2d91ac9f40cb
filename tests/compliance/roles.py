"""The PostgreSQL roles of deploy/postgres/ for tests: psql as the test's superuser, and a fresh
application role made by app_role.sql. Roles are cluster-wide, so each gets a unique name."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

from django.conf import settings
from django.db import connection

SCRIPT = settings.BASE_DIR / "deploy" / "postgres" / "app_role.sql"


def psql(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = [
        shutil.which("psql") or "psql",
        "-X",
        "-q",
        "-h",
        db.get("HOST") or "127.0.0.1",
        "-p",
        str(db.get("PORT") or 5432),
        "-U",
        db["USER"],
        "-d",
        db["NAME"],
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=check)


def unique_role(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def make_app_role() -> str:
    role = unique_role("terminal_app")
    psql("-v", f"app_role={role}", "-f", str(SCRIPT))
    return role


def drop_role(role: str) -> None:
    psql("-c", f'DROP OWNED BY "{role}"; DROP ROLE "{role}";')

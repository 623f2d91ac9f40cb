"""Checks shared by the deployment tests: the commands a container runs and the environment it sets
must exist in the project, and the external tools the tests drive must be installed."""

from __future__ import annotations

import importlib
import re
import shutil
import warnings
from pathlib import Path

import click
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from config.celery import QUEUES
from config.celery import app as celery_app
from tests.conftest import _missing

ROOT = Path(__file__).resolve().parents[2]

# Commands the deployment files run whose code is being built in another part of the project:
# command -> the app that will provide it. Once the command exists it is checked like any other.
PENDING_COMMANDS = {"run_feed": "marketdata"}


def env_names_read_by_settings() -> set[str]:
    """Return the environment variable names that config/settings.py, the secrets it reads
    (config/keys.py), config/celery.py and the web server's settings (config/gunicorn.conf.py) read."""
    files = ("settings.py", "keys.py", "celery.py", "gunicorn.conf.py")
    source = "".join((ROOT / "config" / name).read_text() for name in files)
    return set(re.findall(r'env_\w+\(\s*"([A-Z_][A-Z0-9_]*)"', source)) | {"DJANGO_SETTINGS_MODULE"}


def listen_port(argv: list[str]) -> int:
    """Return the port a web command listens on (gunicorn's --bind host:port, or Daphne's --port)."""
    if argv[0] == "gunicorn":
        return int(argv[argv.index("--bind") + 1].rsplit(":", 1)[1])
    return int(argv[argv.index("--port") + 1])


def _check_manage_py(argv: list[str]) -> None:
    assert argv[1] == "manage.py", argv
    name = argv[2]
    commands = get_commands()
    if name not in commands:
        assert name in PENDING_COMMANDS, f"manage.py has no command {name!r}"
        return
    # The command's own parser judges the arguments, as `manage.py` would.
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    try:
        parser.parse_args(argv[3:])
    except CommandError as exc:
        raise AssertionError(f"manage.py {name}: {exc}") from None


def _check_daphne(argv: list[str]) -> None:
    _check_asgi_target(argv[-1])
    assert "--port" in argv and argv[argv.index("--port") + 1].isdigit()


def _check_asgi_target(target: str) -> None:
    module, _, attribute = target.partition(":")
    path = ROOT / (module.replace(".", "/") + ".py")
    assert path.exists(), target
    assert attribute == "application"
    assert f"{attribute} = " in path.read_text()


def _check_gunicorn(argv: list[str]) -> None:
    """Parse the arguments with gunicorn's own parser, load the config file and check what it names."""
    from gunicorn.config import Config

    parsed = Config().parser().parse_args(argv[1:])
    assert parsed.config, "the web server reads the project's gunicorn settings"
    config_path = ROOT / parsed.config
    assert config_path.exists(), parsed.config
    config = Config()
    namespace: dict = {"__file__": str(config_path), "__name__": "__config__"}
    exec(compile(config_path.read_text(), str(config_path), "exec"), namespace)  # as gunicorn loads it
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)  # gunicorn's validators judge each setting
    worker_module, _, worker_class = config.worker_class_str.rpartition(".")
    assert getattr(importlib.import_module(worker_module), worker_class), config.worker_class_str
    assert config.workers >= 1
    assert parsed.bind and listen_port(argv) > 0, "the web server binds host:port"
    _check_asgi_target(parsed.args[-1])


def _check_celery(argv: list[str]) -> list[str]:
    """Parse the arguments with Celery's own command line; return the queues a worker consumes."""
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery

    assert argv[argv.index("--app") + 1] == "config"
    context = celery.make_context("celery", list(argv[1:]))
    context.obj = CLIContext(app=celery_app, no_color=True, workdir=None, quiet=True)
    with warnings.catch_warnings():  # Click 8.2 keeps the subcommand in protected_args, Click 9 in args
        warnings.simplefilter("ignore", DeprecationWarning)
        name, *rest = [*getattr(context, "protected_args", []), *context.args]
    subcommand = celery.get_command(context, name)
    assert subcommand is not None, f"celery has no subcommand {name!r}"
    try:
        parsed = subcommand.make_context(name, rest, parent=context)
    except click.ClickException as exc:
        raise AssertionError(f"celery {name}: {exc.format_message()}") from None
    if name != "worker":
        return []
    queues = list(parsed.params.get("queues") or [])
    assert queues, "a worker names the queues it consumes"
    assert set(queues) <= set(QUEUES), f"unknown queues {set(queues) - set(QUEUES)}"
    return queues


def check_command(argv: list[str]) -> list[str]:
    """Assert that ``argv`` runs something the project has, with arguments its parser accepts.

    Returns the Celery queues the command consumes (empty for anything but a worker).
    """
    program = argv[0]
    if program == "python":
        _check_manage_py(argv)
    elif program == "daphne":
        _check_daphne(argv)
    elif program == "gunicorn":
        _check_gunicorn(argv)
    elif program == "celery":
        return _check_celery(argv)
    else:
        raise AssertionError(f"unexpected program {program!r} in {argv}")
    return []


def require_tool(name: str) -> str:
    """Return the path of an installed tool; skip locally, fail in CI, when it is missing."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed (scripts/install-system-packages installs it)")
    return path

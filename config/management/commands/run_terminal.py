"""Serve the terminal with Daphne or uvicorn (one process); in standalone mode also run Celery (worker and
beat), the simulated feed and the strategy runner in-process. Several processes sharing a port are gunicorn's job
(``gunicorn config.asgi:application -k config.serving.UvicornWorker -w N``, full stack only)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve the terminal over HTTP and websockets (Daphne or uvicorn). Standalone mode adds Celery in-process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-celery", action="store_true", help="do not start the in-process worker and beat")
        parser.add_argument("--no-feed", action="store_true", help="standalone: do not start the simulated feed")
        parser.add_argument(
            "--server", choices=("daphne", "uvicorn"), default="daphne",
            help="the ASGI server; uvicorn runs with config.serving.UVICORN_OPTIONS",
        )  # fmt: skip

    def handle(
        self, *args, host: str, port: int, no_celery: bool, no_feed: bool = False, server: str = "daphne", **options
    ):
        if not 0 < port < 65536:
            raise CommandError(f"--port {port} is out of range: expected 1-65535")
        from config.asgi import application

        if settings.STANDALONE and not no_celery:
            from config.standalone import start_celery_in_process

            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            start_celery_in_process(schedule_path=str(settings.VAR_DIR / "celerybeat-schedule"))
        if settings.STANDALONE and not no_feed:
            # The in-memory quote store and tick hub only reach this process, so the simulator runs here.
            from marketdata.feeds.runner import start_simulator_in_process

            start_simulator_in_process()
            # Tick-driven deployments and every deployment's exits run on this process's ticks.
            from strategies.runner import start_runner_in_process

            start_runner_in_process()
        mode = "standalone" if settings.STANDALONE else "full stack"
        self.stdout.write(f"Terminal ({mode}, {server}) listening on http://{host}:{port}/", ending="\n")
        self.stdout.flush()
        if server == "uvicorn":
            import uvicorn

            from config.serving import UVICORN_OPTIONS

            uvicorn.run(
                application, host=host, port=port, log_level="warning", access_log=False,
                **UVICORN_OPTIONS,
            )  # fmt: skip
            return
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            # No proxy headers here: core.client_ip applies TRUSTED_PROXIES (config/serving.py).
            verbosity=0,
        ).run()

"""ASGI entry point: HTTP through Django, websockets through Channels.

A socket's user is its session's user only once that session passed the second factor
(accounts.websocket); otherwise consumers see an anonymous user and close. A stopping process
pushes the order changes it still holds (infra.lifespan).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.startup import settings_or_exit

settings_or_exit()

import django  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

django.setup(set_prefix=False)

from infra.sync_asgi import SyncChainASGIHandler  # noqa: E402

# Django's WSGI handler (its middleware chain built in sync mode), run in one call of the request's thread.
django_asgi_app = SyncChainASGIHandler()

from accounts.websocket import SocketAuthMiddlewareStack  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from infra import lifespan  # noqa: E402
from infra.metrics import start_metrics_server  # noqa: E402

start_metrics_server()  # on METRICS_PORT when set (production pods), beside the public port

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(SocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan.application,  # uvicorn's start-up and shutdown: drains the push queue
    }
)

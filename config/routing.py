from django.urls import path

from infra.consumers import UserConsumer
from marketdata.routing import websocket_urlpatterns as marketdata_websockets

websocket_urlpatterns = [
    path("ws/user/", UserConsumer.as_asgi()),
    *marketdata_websockets,
]

from django.urls import path

from marketdata.routing import websocket_urlpatterns as marketdata_websockets
from terminal.consumers import UserConsumer

websocket_urlpatterns = [
    path("ws/user/", UserConsumer.as_asgi()),
    *marketdata_websockets,
]
